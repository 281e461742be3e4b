"""Augmentation and training dataset: tiny-box accounting, geometry, determinism, multi-scale, workers."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.data.transforms import AugmentConfig, Sample, filter_boxes, mosaic, random_affine

torch = pytest.importorskip("torch")

from flowdet.data.coco import load_coco  # noqa: E402
from flowdet.data.dataset import DetectionDataset, build_loader, collate, multiscale_size  # noqa: E402

PLAIN = dict(mosaic_prob=0.0, mixup_prob=0.0, hsv_prob=0.0, flip_prob=0.0, degrees=0.0, translate=0.0,
             scale=[1.0, 1.0], shear=0.0)


def _write_set(root: Path, boxes_per_image: list[list[list[float]]], size: tuple[int, int] = (320, 320)) -> Path:
    """Grey images with a white filled rectangle per box; COCO json next to images/."""
    (root / "images").mkdir(parents=True)
    h, w = size
    images, anns = [], []
    for i, boxes in enumerate(boxes_per_image):
        img = np.full((h, w, 3), 90, np.uint8)
        for b in boxes:
            x, y, bw, bh = b
            img[int(y):int(y + bh), int(x):int(x + bw)] = 255
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": b,
                         "area": bw * bh, "iscrowd": 0})
        cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": w, "height": h})
    ann = root / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "bottle"}]}))
    return ann


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dset")
    return _write_set(root, [[[40, 40, 40, 30], [200, 150, 6, 6]], [[100, 120, 60, 20]], [[10, 250, 24, 24]],
                             [[150, 60, 32, 48], [250, 250, 40, 40]]])


def test_tiny_boxes_dropped_and_counted(small_set):
    recs = load_coco(small_set).records
    # 320 → 160: the 6 px box becomes 3 px (kept), with min_box_size 4 it must be dropped and counted.
    ds = DetectionDataset(recs, 160, AugmentConfig(**PLAIN, min_box_size=4.0), augment=False)
    img, target, tiny, out = ds[0]
    assert img.shape == (160, 160, 3) and img.dtype == np.uint8
    assert target.shape == (1, 5) and tiny == 1 and out == 0
    np.testing.assert_allclose(target[0], [0, 20, 20, 40, 35])
    # Through the loader the per-batch count arrives in info.
    _, _, info = collate([ds[0], ds[1]])
    assert info["dropped_tiny"] == 1


def test_filter_boxes_separates_out_of_view_from_tiny():
    b = np.array([[-50, 10, -10, 40], [5, 5, 6.5, 30], [10, 10, 30, 30], [-30, 0, 2, 20]], np.float32)
    kept, cls, tiny, out = filter_boxes(b, np.zeros(4, np.int64), 100, 100, 2.0, 0.25)
    assert tiny == 1 and out == 2  # fully outside + <25 % visible are "out"; 1.5 px wide is "tiny"
    np.testing.assert_allclose(kept, [[10, 10, 30, 30]])


@pytest.mark.parametrize("seed", range(6))
def test_affine_boxes_inside_and_cover_the_object(seed):
    img = np.full((240, 320, 3), 90, np.uint8)
    img[100:140, 120:200] = 255
    s = Sample(img, np.array([[120, 100, 200, 140]], np.float32), np.zeros(1, np.int64))
    cfg = AugmentConfig(degrees=10.0, translate=0.1, scale=[0.5, 1.5], shear=2.0)
    out = random_affine(s, (256, 256), np.random.default_rng(seed), cfg)
    b, _, _, _ = filter_boxes(out.boxes, out.classes, 256, 256, 2.0, 0.25)
    assert out.img.shape == (256, 256, 3)
    assert len(b) == 1 and b.min() >= 0 and b[:, [0, 2]].max() <= 256 and b[:, [1, 3]].max() <= 256
    ys, xs = np.nonzero(out.img[..., 0] > 200)
    obj = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    # The warped object lies inside its transformed box (corner hull: may be a bit larger when rotated).
    assert (obj[:2] >= b[0, :2] - 2).all() and (obj[2:] <= b[0, 2:] + 2).all()
    inter = np.prod(np.clip(np.minimum(obj[2:], b[0, 2:]) - np.maximum(obj[:2], b[0, :2]), 0, None))
    union = np.prod(obj[2:] - obj[:2]) + np.prod(b[0, 2:] - b[0, :2]) - inter
    assert inter / union > 0.6


def test_full_augmentation_keeps_boxes_valid_and_is_deterministic(small_set):
    recs = load_coco(small_set).records
    cfg = AugmentConfig(mosaic_prob=1.0, mixup_prob=0.5, scale=[0.3, 1.7], no_aug_epochs=1)
    ds = DetectionDataset(recs, 160, cfg, seed=3, epochs=5)
    for i in range(4):
        for epoch in range(3):
            img, t, tiny, out = ds[(i, epoch, 160, 160)]
            assert img.shape == (160, 160, 3)
            if len(t):
                assert t[:, 1:].min() >= 0 and t[:, [1, 3]].max() <= 160 and t[:, [2, 4]].max() <= 160
                assert (t[:, 3] - t[:, 1] >= 2).all() and (t[:, 4] - t[:, 2] >= 2).all()
    a, b = ds[(2, 1, 160, 160)], ds[(2, 1, 160, 160)]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = ds[(2, 2, 160, 160)]
    assert not np.array_equal(a[0], c[0])  # a new epoch draws new augmentation
    # The last no_aug_epochs: a plain letterbox, identical for every seed.
    other = DetectionDataset(recs, 160, cfg, seed=99, epochs=5)
    assert np.array_equal(ds[(2, 4, 160, 160)][0], other[(2, 4, 160, 160)][0])


def test_mosaic_shapes_and_tile_clipping():
    rng = np.random.default_rng(0)
    samples = [Sample(np.full((100, 200, 3), 30 * k, np.uint8), np.array([[0, 0, 200, 100]], np.float32),
                      np.array([k], np.int64)) for k in range(4)]
    s, n_out = mosaic(samples, (128, 128), rng)
    assert s.img.shape == (256, 256, 3) and n_out == 0
    assert s.boxes.shape == (4, 4) and s.boxes.min() >= 0 and s.boxes.max() <= 256
    assert sorted(s.classes.tolist()) == [0, 1, 2, 3]


def test_multiscale_schedule_is_shared_and_chunked():
    sizes = [multiscale_size(0, it, 5, 320, [256, 416]) for it in range(100)]
    assert all(s % 32 == 0 and 256 <= s <= 416 for s in sizes)
    assert all(len(set(sizes[k:k + 5])) == 1 for k in range(0, 100, 5))
    assert len(set(sizes)) > 1
    assert multiscale_size(0, 7, 5, 320, []) == 320


def test_loader_same_batches_for_any_worker_count_and_rank_sizes(small_set):
    recs = load_coco(small_set).records
    cfg = AugmentConfig(mosaic_prob=0.5, mixup_prob=0.5, multiscale=[128, 192], multiscale_every=1)
    ds = DetectionDataset(recs, 160, cfg, seed=1, epochs=3)

    def batches(workers: int, rank: int = 0, world: int = 1) -> list:
        loader = build_loader(ds, 2, workers, seed=1, rank=rank, world=world, multiscale=cfg.multiscale, every=1)
        loader.batch_sampler.set_epoch(1)
        return list(loader)

    b0, b2 = batches(0), batches(2)
    assert len(b0) == 2
    for (i0, t0, _), (i2, t2, _) in zip(b0, b2):
        assert i0.dtype == torch.float32 and i0.shape[1] == 3 and i0.shape[2] % 32 == 0
        assert torch.equal(i0, i2) and all(torch.equal(x, y) for x, y in zip(t0, t2))
    r0, r1 = batches(0, 0, 2), batches(0, 1, 2)  # DDP: both ranks use the same size per iteration
    assert [b[0].shape[-1] for b in r0] == [b[0].shape[-1] for b in r1]
