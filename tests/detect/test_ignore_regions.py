"""Ignore regions (crowd / ignore boxes, pseudo-labels' uncertain boxes) in training: they follow the
augmentation geometry as the labels do, and the loss leaves the objectness of their anchors out."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.core.defaults import IGNORE_CLASS
from flowdet.data.transforms import AugmentConfig, filter_boxes

torch = pytest.importorskip("torch")

from flowdet.data.coco import load_coco  # noqa: E402
from flowdet.data.dataset import DetectionDataset  # noqa: E402
from flowdet.detect.loss import YOLOXLoss, ignored_anchors  # noqa: E402

STRIDES = (8, 16, 32)


def _levels(size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 6, size // s, size // s, generator=g) * 0.5).requires_grad_() for s in STRIDES]


def _obj_grad(targets: torch.Tensor, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """The loss on fixed random outputs and the gradient of the stride-8 objectness logits [8, 8]."""
    levels = _levels(seed=seed)
    out = YOLOXLoss(1, STRIDES)(levels, [targets])
    out["total"].backward()
    return out, levels[0].grad[0, 4]


def test_anchor_inside_ignore_region_gets_no_objectness_loss():
    label = [0, 4.0, 4.0, 14.0, 14.0]
    plain, g_plain = _obj_grad(torch.tensor([label]))
    ignore = [IGNORE_CLASS, 34.0, 34.0, 62.0, 62.0]  # holds the stride-8 anchor centres 36…60 (cells 4…7)
    out, g = _obj_grad(torch.tensor([label, ignore]))
    assert out["num_fg"] == plain["num_fg"] and out["num_ignored"] > 0 and plain["num_ignored"] == 0
    assert torch.all(g[4:8, 4:8] == 0)  # inside: no gradient at all
    outside = g[0:2, 4:8]  # negatives outside the region: the usual push towards background
    assert torch.all(outside > 0) and torch.equal(outside, g_plain[0:2, 4:8])
    assert out["obj"] < plain["obj"]  # the ignored anchors' background loss is gone
    assert out["iou"] == plain["iou"] and out["cls"] == plain["cls"]


def test_positive_inside_ignore_region_keeps_its_objectness_target():
    levels = _levels()
    targets = torch.tensor([[0, 20.0, 20.0, 44.0, 44.0], [IGNORE_CLASS, 0.0, 0.0, 64.0, 64.0]])  # the whole image
    out = YOLOXLoss(1, STRIDES)(levels, [targets])
    out["total"].backward()
    g = torch.cat([x.grad[0, 4].flatten() for x in levels])
    assert out["num_fg"] >= 1 and out["num_ignored"] == g.numel() - out["num_fg"]
    assert int((g < 0).sum()) == out["num_fg"] and int((g > 0).sum()) == 0  # positives only, towards "object"


def test_ignore_region_without_anchor_centre_changes_nothing():
    """The ignore path with nothing ignored gives the plain loss exactly (weights of 1)."""
    label = [0, 4.0, 4.0, 30.0, 20.0]
    plain, g_plain = _obj_grad(torch.tensor([label]))
    out, g = _obj_grad(torch.tensor([label, [IGNORE_CLASS, 5.0, 5.0, 7.0, 7.0]]))  # between every grid's centres
    assert out["num_ignored"] == 0
    assert torch.equal(out["total"], plain["total"]) and torch.equal(g, g_plain)


def test_ignored_anchors_batched():
    centres = torch.tensor([[4.0, 4.0], [12.0, 4.0], [52.0, 52.0]])
    mask = ignored_anchors(centres, [torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 8.0, 8.0], [50, 50, 60, 60]])])
    assert mask.tolist() == [[False, False, False], [True, False, True]]


def test_filter_keeps_partly_visible_ignore_regions_uncounted():
    boxes = np.array([[-30, 10, 10, 50], [-30, 10, 10, 50], [40, 40, 41, 41]], np.float32)  # 25 % in view; 1 px
    classes = np.array([0, IGNORE_CLASS, IGNORE_CLASS])
    kept, cls, tiny, out = filter_boxes(boxes, classes, 100, 100, 2.0, 0.5)
    assert cls.tolist() == [IGNORE_CLASS, IGNORE_CLASS] and tiny == 0 and out == 1
    np.testing.assert_allclose(kept[0], [0, 10, 10, 50])


def _twin_set(root: Path, n: int = 6) -> Path:
    """Images whose every box is also given as an iscrowd box of the same place."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n):
        img = np.full((180, 240, 3), 90, np.uint8)
        for _ in range(4):
            x, y = rng.uniform(0, 200), rng.uniform(0, 150)
            w, h = rng.uniform(6, 40), rng.uniform(6, 30)
            img[int(y):int(y + h), int(x):int(x + w)] = 255
            for crowd in (0, 1):
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, w, h],
                             "area": w * h, "iscrowd": crowd})
        cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 240, "height": 180})
    ann = root / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "bottle"}]}))
    return ann


def test_ignore_boxes_follow_the_augmentation_geometry(tmp_path):
    """Mosaic, affine (rotation, shear, scale), mixup and flip move an ignore box exactly as its twin label."""
    records = load_coco(_twin_set(tmp_path)).records
    assert all(r.ignore.sum() == 4 for r in records)
    cfg = AugmentConfig(mosaic_prob=1.0, mixup_prob=1.0, flip_prob=0.5, degrees=20.0, shear=5.0, scale=[0.5, 1.5])
    ds = DetectionDataset(records, (128, 160), cfg, seed=4, epochs=10)
    labels = ignores = 0
    for k in range(12):
        _, target, _, _ = ds[(k % len(records), k, 128, 160)]
        ign = target[target[:, 0] == IGNORE_CLASS, 1:]
        lab = target[target[:, 0] >= 0, 1:]
        labels, ignores = labels + len(lab), ignores + len(ign)
        for b in lab:  # each label's twin region is still there, at exactly the same place
            assert np.abs(ign - b).max(1).min() < 1e-4 if len(ign) else False, (k, b)
    assert labels > 10 and ignores >= labels
    plain = DetectionDataset(records, (128, 160), AugmentConfig(mosaic_prob=0.0, mixup_prob=0.0, flip_prob=0.0,
                                                                   hsv_prob=0.0, degrees=0.0, translate=0.0,
                                                                   scale=[1.0, 1.0], shear=0.0), augment=False)
    _, target, _, _ = plain[0]
    np.testing.assert_allclose(target[target[:, 0] >= 0, 1:], target[target[:, 0] == IGNORE_CLASS, 1:])
