"""Sampler geometry: neighbours, far negatives, object-centred vs box-free patches, views, frames."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flowdet.mine.frames import resolve_frames
from flowdet.pretrain import crops
from flowdet.pretrain.config import AugConfig, MethodConfig
from flowdet.pretrain.crops import CenterPatchSampler, PatchGridSampler, ViewSampler, crop_resize
from flowdet.pretrain.datasets import epoch_indices


def test_crop_resize_is_exact_on_integer_boxes():
    img = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    assert np.array_equal(crop_resize(img, (10, 5, 16, 16), 16), img[5:21, 10:26])


def test_patch_grid_neighbours_and_far_negatives():
    m = MethodConfig(patch=32, crop=32, positives=4, negatives=4, min_neg_dist=2.0)
    s = PatchGridSampler(m, AugConfig(color_p=0, gray_p=0, flip_p=0))
    img = np.random.default_rng(0).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    for seed in range(20):
        out = s(img, np.random.default_rng(seed))
        c = out["centres"]  # patch units
        assert out["patches"].shape == (9, 32, 32, 3)
        d = np.linalg.norm(c[1:] - c[0], axis=1)
        assert np.allclose(d[:4], 1.0) and (d[4:] >= 2.0).all()


def test_center_patches_are_object_centred_or_box_free(monkeypatch):
    m = MethodConfig(patch=32, crop=32, pos_per_image=3, neg_per_image=3)
    s = CenterPatchSampler(m, None)
    img = np.zeros((180, 320, 3), np.uint8)
    boxes = np.array([[100, 80, 110, 92], [20, 20, 30, 28]], np.float32)
    seen = []
    real = crops.crop_resize
    monkeypatch.setattr(crops, "crop_resize", lambda im, box, out: seen.append(box) or real(im, box, out))
    out = s(img, boxes, np.random.default_rng(0))
    assert out["labels"].tolist() == [1, 1, 1, 0, 0, 0] and out["valid"].all()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for (x0, y0, w, h), lab in zip(seen, out["labels"]):
        assert 0.8 * 32 - 1e-6 <= w <= 1.2 * 32 + 1e-6
        if lab == 1:  # the patch centre is a box centre (or the box is inside a border-shifted patch)
            c = np.array([x0 + w / 2, y0 + h / 2])
            assert np.min(np.abs(centres - c).max(1)) < 1e-3 or any(
                x0 <= b[0] and b[2] <= x0 + w and y0 <= b[1] and b[3] <= y0 + h for b in boxes)
        else:
            assert not crops._touches((x0, y0, w, h), boxes)


def test_negatives_marked_invalid_when_every_patch_touches_a_box():
    m = MethodConfig(patch=32, crop=32, pos_per_image=1, neg_per_image=2)
    full = np.array([[0, 0, 64, 64]], np.float32)
    out = CenterPatchSampler(m, None)(np.zeros((64, 64, 3), np.uint8), full, np.random.default_rng(0))
    assert out["valid"].tolist() == [True, False, False]


def test_views_shapes():
    m = MethodConfig(crop=64, small_views=3, small_crop=32)
    out = ViewSampler(m, AugConfig())(np.zeros((180, 320, 3), np.uint8), np.random.default_rng(0))
    assert out["views"].shape == (2, 64, 64, 3) and out["small"].shape == (3, 32, 32, 3)


def test_resolve_frames_sources(tmp_path):
    import cv2

    (tmp_path / "d").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "d" / f"{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "list.txt").write_text("d/0.jpg\n# comment\nd/1.jpg\n")
    (tmp_path / "coco.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "2.jpg"}]}))
    (tmp_path / "images").symlink_to(tmp_path / "d")
    got = resolve_frames([str(tmp_path / "d"), str(tmp_path / "list.txt"), str(tmp_path / "coco.json")])
    assert [p.name for p in got] == ["0.jpg", "1.jpg", "2.jpg"]  # duplicates (also via a symlink) once
    from flowdet.errors import DataError

    with pytest.raises(DataError):
        resolve_frames([str(tmp_path / "nope")])


def test_epoch_indices_split_ranks_evenly():
    a = epoch_indices(10, 0, 0, rank=0, world=3)
    b = epoch_indices(10, 0, 0, rank=1, world=3)
    c = epoch_indices(10, 0, 0, rank=2, world=3)
    assert len(a) == len(b) == len(c) == 4 and set(a + b + c) == set(range(10))
    assert epoch_indices(10, 1, 0) != epoch_indices(10, 0, 0)
