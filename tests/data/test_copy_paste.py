"""Copy-paste of small objects: the bank, exact pasted boxes and pixels, no overlap, placement, no-op at 0."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.data.copy_paste import MARGIN, PER_FRAME, build_bank, paste_objects
from flowdet.data.transforms import AugmentConfig, Sample

WATER = (96, 118, 104)  # BGR, one flat colour: the blend's colour shift is then exactly 0
SOURCE_BOX = np.array([20.3, 30.6, 31.2, 38.9], np.float32)  # fractional on purpose: boxes must stay exact


def _textured(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 231, (h, w, 3), dtype=np.uint8)


def _frame(h: int, w: int, boxes: np.ndarray, seed: int = 0) -> Sample:
    """Flat water with a random-texture object filling the pixels each box touches."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = WATER
    for k, b in enumerate(boxes):
        x0, y0, x1, y1 = int(np.floor(b[0])), int(np.floor(b[1])), int(np.ceil(b[2])), int(np.ceil(b[3]))
        img[y0:y1, x0:x1] = _textured(y1 - y0, x1 - x0, seed + k)
    return Sample(img, boxes.astype(np.float32).reshape(-1, 4), np.zeros(len(boxes), np.int64))


def _one_crop_bank(hw: tuple[int, int] = (120, 160)):
    src = _frame(*hw, SOURCE_BOX[None])
    return build_bank([(src.boxes, *hw)], lambda i: src, hw, 32.0, 2.0, 100, seed=0), src


def _touched(b: np.ndarray) -> tuple[slice, slice]:
    return (slice(int(np.floor(b[1])), int(np.ceil(b[3]))), slice(int(np.floor(b[0])), int(np.ceil(b[2]))))


@pytest.mark.parametrize("seed", range(8))
def test_pasted_objects_are_exact_inside_and_clear_of_every_box(seed):
    bank, src = _one_crop_bank()
    assert len(bank) == 1
    existing = np.array([[10, 10, 40, 30], [60, 50, 75, 62], [100, 20, 112, 90], [130, 95, 150, 110]], np.float32)
    target = _frame(120, 160, existing, seed=100)
    out, n = paste_objects(target, bank, np.random.default_rng(seed), 6, 0.0, 2.0)
    assert n >= 1 and len(out.boxes) == len(existing) + n and len(out.classes) == len(out.boxes)
    assert np.array_equal(out.boxes[:len(existing)], existing)
    new = out.boxes[len(existing):]
    assert (new[:, :2] >= 0).all() and (new[:, 2] <= 160).all() and (new[:, 3] <= 120).all()
    # Same size as the source box (jitter 0, same scale), at a whole-pixel offset: the box is exact.
    np.testing.assert_allclose(new[:, 2:] - new[:, :2], np.tile(SOURCE_BOX[2:] - SOURCE_BOX[:2], (n, 1)), atol=1e-4)
    offset = new[:, :2] - SOURCE_BOX[:2]
    np.testing.assert_allclose(offset, np.round(offset), atol=1e-4)
    rects = np.concatenate([np.floor(new[:, :2]) - MARGIN, np.ceil(new[:, 2:]) + MARGIN], 1)  # what a paste changes
    others = np.concatenate([existing, rects])
    for k, r in enumerate(rects):  # no pasted crop (margin included) covers any box or another paste
        iw = np.minimum(r[2], others[:, 2]) - np.maximum(r[0], others[:, 0])
        ih = np.minimum(r[3], others[:, 3]) - np.maximum(r[1], others[:, 1])
        hit = (iw > 0) & (ih > 0)
        hit[len(existing) + k] = False
        assert not hit.any()
    changed = np.zeros((120, 160), bool)
    for b, r in zip(new, rects):  # the object is the source's pixels, exactly
        assert np.array_equal(out.img[_touched(b)], src.img[_touched(SOURCE_BOX)])
        changed[int(r[1]):int(r[3]), int(r[0]):int(r[2])] = True
    assert np.array_equal(out.img[~changed], target.img[~changed])  # nothing else was touched


def test_margin_is_feathered_and_tone_matched():
    bank, _ = _one_crop_bank()
    target = _frame(120, 160, np.zeros((0, 4)))
    target.img[:] = np.clip(np.array(WATER) + 20, 0, 255)  # other water: the crop shifts by +20 per channel
    out, n = paste_objects(target, bank, np.random.default_rng(0), 1, 0.0, 2.0)
    assert n == 1
    b = out.boxes[0]
    diff = out.img[_touched(b)].astype(int) - bank.crops[0][_touched(bank.boxes[0])].astype(int)
    assert (diff == 20).all()  # the object keeps its own pixels, shifted by the tone difference
    # The margin ends in the water's own colour (shifted crop water = target water): no seam, no patch.
    y0, x0 = int(np.floor(b[1])) - MARGIN, int(np.floor(b[0])) - MARGIN
    assert (out.img[y0, x0:int(np.ceil(b[2])) + MARGIN] == target.img[0, 0]).all()


def test_no_room_no_paste_and_never_on_padding_or_other_colours():
    bank, _ = _one_crop_bank()
    pad = Sample(np.full((120, 160, 3), 114, np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    sand = Sample(np.full((120, 160, 3), (30, 160, 220), np.uint8), pad.boxes, pad.classes)  # far from water
    full = _frame(120, 160, np.array([[0, 0, 160, 120]], np.float32))
    for s in (pad, sand, full):
        out, n = paste_objects(s, bank, np.random.default_rng(0), 8, 0.0, 2.0)
        assert n == 0 and out is s


def test_never_across_an_edge_and_no_source_with_a_busy_margin():
    bank, _ = _one_crop_bank()
    shore = _frame(120, 160, np.zeros((0, 4)))
    # Either side is close enough in colour; across the edge the mean is closest, but it is busier.
    shore.img[:, :80], shore.img[:, 80:] = np.array(WATER) - 20, np.array(WATER) + 20
    for seed in range(6):
        out, n = paste_objects(shore, bank, np.random.default_rng(seed), 4, 0.0, 2.0)
        assert n >= 1
        for b in out.boxes:
            x0, x1 = np.floor(b[0]) - MARGIN, np.ceil(b[2]) + MARGIN
            assert x1 <= 80 or x0 >= 80
    busy = _frame(120, 160, SOURCE_BOX[None])
    busy.img[28:30, 16:36] = 250  # something unlabeled right above the object, inside its margin
    assert len(build_bank([(busy.boxes, 120, 160)], lambda i: busy, (120, 160), 32.0, 2.0, 10, seed=0)) == 0


def test_bank_keeps_small_boxes_at_input_scale_within_the_cap():
    boxes = np.array([[40, 60, 62, 78], [200, 100, 300, 160], [400, 300, 402.5, 303], [1, 1, 15, 15]], np.float32)
    src = _frame(480, 640, boxes)
    # Input 240x320 (r = 0.5): 22 px → 11 kept; 100 px → 50 too big; 2.5 px → 1.25 under min side;
    # the last one's margin leaves the frame.
    bank = build_bank([(src.boxes, 480, 640)], lambda i: src, (240, 320), 32.0, 2.0, 100, seed=0)
    assert len(bank) == 1 and bank.n_images == 1
    np.testing.assert_allclose(bank.boxes[0, 2:] - bank.boxes[0, :2], [11, 9], atol=0.3)
    h, w = bank.crops[0].shape[:2]
    assert abs(w - (11 + 2 * MARGIN)) <= 1 and abs(h - (9 + 2 * MARGIN)) <= 1
    many = _frame(240, 320, np.array([[10 + 30 * k, 10, 20 + 30 * k, 20] for k in range(9)], np.float32))
    cap = PER_FRAME + 1  # 9 eligible boxes per frame: one frame gives PER_FRAME, the next the last one
    capped = build_bank([(many.boxes, 240, 320)] * 3, lambda i: many, (240, 320), 32.0, 2.0, cap, seed=0)
    assert len(capped) == cap and capped.n_images == 2
    # No eligible label: nothing is loaded at all.
    none = build_bank([(np.zeros((0, 4), np.float32), 240, 320)], lambda i: pytest.fail("loaded"), (240, 320),
                      32.0, 2.0, 5, seed=0)
    assert len(none) == 0


def test_jitter_and_multiscale_keep_boxes_exact_and_sizes_close():
    bank, _ = _one_crop_bank()
    side = SOURCE_BOX[2:] - SOURCE_BOX[:2]
    for seed in range(6):
        big = Sample(np.full((240, 320, 3), WATER, np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        out, n = paste_objects(big, bank, np.random.default_rng(seed), 3, 0.2, 2.0)  # the input twice the base
        assert n >= 1
        got = (out.boxes[:, 2:] - out.boxes[:, :2]) / (2 * side)
        assert (got > 0.75).all() and (got < 1.25).all()


# --- through the dataset (needs torch) --------------------------------------------------------------------

def _write_set(root: Path, n: int = 6) -> Path:
    (root / "images").mkdir(parents=True)
    images: list[dict] = []
    anns: list[dict] = []
    for i in range(n):
        boxes = np.array([[20 + 7 * i, 30, 31 + 7 * i, 40], [90, 60 + 5 * i, 130, 100 + 5 * i],
                          [150, 20 + 9 * i, 158, 26 + 9 * i]], np.float32)
        cv2.imwrite(str(root / "images" / f"{i}.png"), _frame(160, 224, boxes, seed=10 * i).img)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 224, "height": 160})
        anns += [{"id": len(anns) + k + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                  "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                  "area": float((b[2] - b[0]) * (b[3] - b[1]))} for k, b in enumerate(boxes)]
    ann = root / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "debris"}]}))
    return ann


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    pytest.importorskip("torch")
    from flowdet.data.coco import load_coco

    return load_coco(_write_set(tmp_path_factory.mktemp("cp"))).records


KEYS = [(i, e, 160, 224) for i in range(6) for e in range(2)]
SMALL = dict(mixup_prob=0.0, scale=[0.8, 1.2], degrees=0.0, shear=0.0)


def test_probability_zero_is_byte_identical_and_one_pastes(records):
    from flowdet.data.dataset import DetectionDataset

    base = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL), seed=2, epochs=3)
    zero = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL, copy_paste=0.0, copy_paste_max=3,
                                                               copy_paste_side=64.0), seed=2, epochs=3)
    assert zero.copy_paste is None and zero.copy_paste_note() is None
    for k in KEYS:
        a, b = base[k], zero[k]
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
    on = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL, copy_paste=1.0), seed=2, epochs=3)
    assert on.copy_paste is not None and "copy-paste 1" in on.copy_paste_note()
    assert sum(len(on[k][1]) for k in KEYS) > sum(len(base[k][1]) for k in KEYS)


def test_same_samples_cached_or_not_and_cache_untouched(records):
    from flowdet.data.dataset import DetectionDataset

    cfg = AugmentConfig(**SMALL, copy_paste=1.0)
    cached = DetectionDataset(records, (160, 224), cfg, seed=5, epochs=3, cache=True)
    frames = [f.copy() for f in cached._cache]
    plain = DetectionDataset(records, (160, 224), cfg, seed=5, epochs=3)
    for k in KEYS:
        a, b = cached[k], plain[k]
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        t = a[1]
        assert t[:, 1:].min() >= 0 and t[:, 3].max() <= 224 and t[:, 4].max() <= 160
    assert all(np.array_equal(f, g) for f, g in zip(frames, cached._cache))


def test_loader_batches_equal_for_zero_and_two_workers(records):
    import torch

    from flowdet.data.dataset import DetectionDataset, KeyBatchSampler, build_loader

    ds = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL, copy_paste=0.7), seed=1, epochs=3, cache=True)

    def batches(workers: int) -> list:
        loader = build_loader(ds, 3, workers, seed=1)
        assert isinstance(loader.batch_sampler, KeyBatchSampler)
        loader.batch_sampler.set_epoch(1)
        return list(loader)

    for (i0, t0, _), (i2, t2, _) in zip(batches(0), batches(2)):
        assert torch.equal(i0, i2) and all(torch.equal(x, y) for x, y in zip(t0, t2))


@pytest.mark.parametrize("key,value", [("copy_paste", 1.5), ("copy_paste", -0.1), ("copy_paste_max", 0),
                                       ("copy_paste_side", 0.0), ("copy_paste_jitter", 1.0),
                                       ("copy_paste_bank", 0)])
def test_bad_values_are_one_line_errors_naming_the_key(key, value):
    from flowdet.config import ConfigError
    from flowdet.detect.config import DataSection, DetectConfig, validate

    cfg = DetectConfig(data=DataSection(train="x.json"), augment=AugmentConfig(**{key: value}))
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert str(e.value).startswith(f"augment.{key}:") and "\n" not in str(e.value)


def test_cli_rejects_a_bad_probability_in_one_line(capsys, tmp_path):
    from cli_helpers import run_cli_captured

    code, _, err = run_cli_captured(capsys, "train", "--data", str(tmp_path / "none.json"), "--out",
                                    str(tmp_path / "r"), "--set", "augment.copy_paste=2")
    assert code == 2 and "augment.copy_paste" in err and len(err.strip().splitlines()) == 1


def test_an_empty_bank_is_said_and_changes_nothing(records):
    from flowdet.data.dataset import DetectionDataset

    base = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL), seed=2, epochs=3)
    none = DetectionDataset(records, (160, 224), AugmentConfig(**SMALL, copy_paste=1.0, copy_paste_side=4.0),
                            seed=2, epochs=3)  # every box is larger than 4 px
    assert none.copy_paste is None and "nothing to paste" in (none.copy_paste_note() or "")
    assert all(np.array_equal(base[k][0], none[k][0]) for k in KEYS[:4])
