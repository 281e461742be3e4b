"""YOLOXLoss on small random and hand-built head outputs (64–128 px inputs, CPU)."""
from __future__ import annotations

import math

import pytest
import torch

from flowdet.detect.loss import YOLOXLoss

STRIDES = (8, 16, 32)


def random_levels(batch: int = 2, size: int = 128, num_classes: int = 1, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 5 + num_classes, size // s, size // s, generator=g) * 0.5).requires_grad_()
            for s in STRIDES]


def levels_predicting(box_cxcywh: list[float], size: int = 64, obj: float = 0.0) -> list[torch.Tensor]:
    """Raw outputs for which every anchor decodes to exactly ``box_cxcywh`` (batch 1, one class)."""
    cx, cy, w, h = box_cxcywh
    levels = []
    for s in STRIDES:
        n = size // s
        gy, gx = torch.meshgrid(torch.arange(n).float(), torch.arange(n).float(), indexing="ij")
        raw = torch.stack([cx / s - gx, cy / s - gy, torch.full_like(gx, math.log(w / s)),
                           torch.full_like(gx, math.log(h / s)), torch.full_like(gx, obj), torch.zeros_like(gx)])
        levels.append(raw[None].clone().requires_grad_())
    return levels


def test_random_levels_finite_and_backward():
    levels = random_levels()
    targets = [torch.tensor([[0, 10.0, 10.0, 14.0, 14.0], [0, 40.0, 30.0, 100.0, 90.0]]),
               torch.tensor([[0, 60.0, 60.0, 68.0, 66.0]])]
    for kind in ("iou", "giou", "ciou"):
        out = YOLOXLoss(1, STRIDES, iou_loss=kind)(levels, targets, use_l1=True)
        assert set(out) >= {"total", "iou", "obj", "cls", "l1", "num_fg", "miss_share"}
        assert out["total"].ndim == 0 and torch.isfinite(out["total"])
        assert out["num_fg"] >= 3 and isinstance(out["num_fg"], int)
        assert 0.0 <= out["miss_share"] <= 1.0
        for k in ("iou", "obj", "cls", "l1"):
            assert not out[k].requires_grad and torch.isfinite(out[k]) and out[k] > 0
    for x in levels:
        x.grad = None
    out["total"].backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in levels)


def test_zero_box_images():
    levels = random_levels(batch=2)
    loss_fn = YOLOXLoss(1, STRIDES)
    out = loss_fn(levels, [torch.zeros(0, 5), torch.tensor([[0, 20.0, 20.0, 50.0, 60.0]])])
    assert out["num_fg"] >= 1
    out = loss_fn(levels, [torch.zeros(0, 5), torch.zeros(0, 5)], use_l1=True)
    assert out["num_fg"] == 0 and out["miss_share"] == 0.0
    assert out["iou"] == 0 and out["cls"] == 0 and out["l1"] == 0 and out["obj"] > 0
    out["total"].backward()
    assert torch.isfinite(levels[0].grad).all()


def test_exact_predictions_have_zero_box_and_l1_loss():
    # Every anchor decodes to the target box → IoU 1 everywhere; the L1 targets must equal the raw outputs.
    levels = levels_predicting([27.0, 35.0, 12.0, 20.0])
    target = [torch.tensor([[0, 21.0, 25.0, 33.0, 45.0]])]
    out = YOLOXLoss(1, STRIDES, iou_loss="ciou")(levels, target, use_l1=True)
    assert out["num_fg"] >= 1 and out["miss_share"] == 0.0
    assert out["iou"].item() == pytest.approx(0.0, abs=1e-5)
    assert out["l1"].item() == pytest.approx(0.0, abs=1e-4)


def test_missed_positives_only_ciou_pulls_them():
    # Every anchor predicts a 2 px box far from the target: every positive is a miss (IoU 0).
    target = [torch.tensor([[0, 40.0, 40.0, 44.0, 44.0]])]
    grads = {}
    for kind in ("iou", "ciou"):
        levels = levels_predicting([5.0, 5.0, 2.0, 2.0])
        out = YOLOXLoss(1, STRIDES, iou_loss=kind, obj_weight=0.0, cls_weight=0.0)(levels, target)
        assert out["miss_share"] == 1.0 and out["num_miss"] == out["num_fg"] >= 1
        out["total"].backward()
        grads[kind] = sum(x.grad[:, :4].abs().sum() for x in levels)
    assert grads["iou"] == 0 and grads["ciou"] > 0


def test_weights_and_l1_switch():
    levels = random_levels(batch=1, size=64)
    target = [torch.tensor([[0, 20.0, 20.0, 40.0, 44.0]])]
    base = YOLOXLoss(1, STRIDES)(levels, target)
    assert base["l1"] == 0
    weighted = 5.0 * base["iou"] + base["obj"] + base["cls"]
    assert base["total"].item() == pytest.approx(weighted.item(), rel=1e-5)
    with_l1 = YOLOXLoss(1, STRIDES, l1_weight=2.0)(levels, target, use_l1=True)
    assert with_l1["total"].item() == pytest.approx(base["total"].item() + 2.0 * with_l1["l1"].item(), rel=1e-5)


def test_multiclass_and_bf16_autocast():
    levels = [x.detach().bfloat16().requires_grad_() for x in random_levels(batch=2, size=64, num_classes=3)]
    targets = [torch.tensor([[2, 10.0, 10.0, 30.0, 30.0]]), torch.tensor([[0, 5.0, 5.0, 9.0, 9.0], [1, 30.0, 20.0, 60.0, 50.0]])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = YOLOXLoss(3, STRIDES)(levels, targets)
    assert out["total"].dtype == torch.float32 and torch.isfinite(out["total"])
    out["total"].backward()
    assert levels[0].grad.dtype == torch.bfloat16


def test_ddp_single_rank_normalisation(tmp_path):
    import torch.distributed as dist

    levels = random_levels(batch=1, size=64)
    target = [torch.tensor([[0, 20.0, 20.0, 40.0, 44.0]])]
    plain = YOLOXLoss(1, STRIDES)(levels, target)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = YOLOXLoss(1, STRIDES)(levels, target)
    finally:
        dist.destroy_process_group()
    assert ddp["total"].item() == pytest.approx(plain["total"].item(), rel=1e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        YOLOXLoss(0)
    with pytest.raises(ValueError):
        YOLOXLoss(1, iou_loss="diou")
    with pytest.raises(ValueError):
        YOLOXLoss(1, reg_weight=-1.0)
    with pytest.raises(ValueError):
        YOLOXLoss(1, strides=())
    loss_fn = YOLOXLoss(1, STRIDES)
    with pytest.raises(ValueError):
        loss_fn(random_levels(num_classes=2), [torch.zeros(0, 5)] * 2)  # 7 channels for 1 class
    with pytest.raises(ValueError):
        loss_fn(random_levels(), [torch.zeros(0, 5)])  # 1 target tensor for a batch of 2
    with pytest.raises(ValueError):
        loss_fn(random_levels(), [torch.zeros(0, 4)] * 2)
