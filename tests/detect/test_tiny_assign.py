"""Tiny-object assignment options (min_box_side, min_k, NWD), NWD itself, recipes and the auto schedule."""
from __future__ import annotations

import math

import pytest
import torch

from flowdet.detect.simota import candidate_test_boxes, simota_assign
from flowdet.models.head import make_grids
from flowdet.ops.nwd import NWDLoss, nwd, nwd_pairwise


def _grid(size: int = 640, strides=(8, 16, 32)):
    levels = [torch.zeros(1, 6, size // s, size // s) for s in strides]
    cells, strs = make_grids(levels, strides)
    return (cells + 0.5) * strs[:, None], strs


def _assign(gt, **kw):
    centres, strides = _grid()
    pred = torch.cat([centres, torch.full((centres.shape[0], 2), 6.0)], 1)  # 6 px boxes on every anchor
    return simota_assign(pred, torch.full((pred.shape[0], 1), 0.5), centres, strides, gt,
                         torch.zeros(gt.shape[0], dtype=torch.long), **kw)


TINY = torch.tensor([[413.0, 413.0, 417.0, 417.0], [201.0, 305.0, 206.0, 311.0]])  # 4–6 px, off the grid


def test_plain_simota_gives_a_tiny_box_one_positive_and_min_k_gives_it_more():
    plain = torch.bincount(_assign(TINY).matched_gt, minlength=2)
    assert plain.tolist() == [1, 1]
    more = torch.bincount(_assign(TINY, min_k=3).matched_gt, minlength=2)
    assert more.tolist() == [3, 3]


def test_min_box_side_makes_neighbouring_anchors_count_as_inside():
    centres, strides = _grid()
    a = _assign(TINY[:1], min_box_side=16, min_k=4)
    chosen = centres[a.fg_mask]
    # with a 16 px candidate box around (415, 415) the stride-8 anchors at 412/420 are "inside"
    assert a.num_fg == 4 and (chosen - 415).abs().max() <= 8 and (strides[a.fg_mask] == 8).all()


def test_small_box_below_enlarges_only_the_boxes_under_it():
    """YOLO26's rule (min_box_side=16, small_box_below=8): a 4 px box grows to 16 px, a 10 px box stays."""
    boxes = torch.tensor([[413.0, 413.0, 417.0, 417.0], [410.0, 410.0, 420.0, 420.0], [0.0, 0.0, 30.0, 30.0]])
    grown = candidate_test_boxes(boxes, 16)
    assert grown[:2].tolist() == [[407.0, 407.0, 423.0, 423.0]] * 2 and torch.equal(grown[2], boxes[2])
    rule = candidate_test_boxes(boxes, 16, small_box_below=8)
    assert rule[0].tolist() == [407.0, 407.0, 423.0, 423.0] and torch.equal(rule[1:], boxes[1:])
    assert candidate_test_boxes(boxes, 0, small_box_below=8) is boxes
    assert _assign(TINY[:1], min_box_side=16, small_box_below=8, min_k=4).num_fg == 4  # as the plain rule's test
    with pytest.raises(ValueError, match="small_box_below"):
        _assign(TINY, small_box_below=-1)


def test_nwd_cost_assigns_and_keeps_every_box_covered():
    a = _assign(TINY, cost="nwd", min_box_side=16)
    assert set(a.matched_gt.tolist()) == {0, 1}
    with pytest.raises(ValueError):
        _assign(TINY, cost="giou")
    with pytest.raises(ValueError):
        _assign(TINY, min_k=0)


def test_nwd_values_and_gradient_for_disjoint_boxes():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    assert nwd_pairwise(a, a).item() == pytest.approx(1.0, abs=1e-3)
    # centres 10 px apart, same shape: W2 = 10 → exp(-10 / 12.8)
    b = torch.tensor([[10.0, 0.0, 14.0, 4.0]])
    assert nwd_pairwise(a, b).item() == pytest.approx(math.exp(-10 / 12.8), rel=1e-4)
    assert nwd(a, b, fmt="xyxy").item() == pytest.approx(nwd_pairwise(a, b).item(), rel=1e-6)
    pred = b.clone().requires_grad_(True)
    NWDLoss(fmt="xyxy")(pred, a).backward()  # IoU is 0 here; NWD still pulls the box over
    assert pred.grad[0, 0] > 0
    for bad in (dict(constant=0), dict(reduction="max"), dict(fmt="xywh")):
        with pytest.raises(ValueError):
            NWDLoss(**bad)


def test_loss_reports_positives_per_size_bucket_and_nwd_term_adds():
    from flowdet.detect.loss import YOLOXLoss

    torch.manual_seed(0)
    levels = [torch.randn(1, 6, 640 // s, 640 // s) for s in (8, 16, 32)]
    targets = [torch.tensor([[0, 413.0, 413.0, 417.0, 417.0], [0, 100.0, 100.0, 140.0, 150.0]])]
    out = YOLOXLoss(1, min_k=3)(levels, targets)
    assert out["bucket_gt"].tolist() == [1, 0, 0, 1]
    assert out["bucket_fg"][0] >= 3 and out["bucket_fg"].sum() == out["num_fg"]
    with_nwd = YOLOXLoss(1, min_k=3, nwd_weight=1.0)(levels, targets)
    assert with_nwd["total"] > out["total"]


def test_recipe_applies_without_config_and_user_values_win(tmp_path):
    from flowdet.detect.recipes import load_detect_config

    cfg, recipe = load_detect_config(None, ["model.size=nano"])
    assert recipe == "nano" and cfg.augment.mixup_prob == 0 and cfg.augment.degrees == 0
    cfg, _ = load_detect_config(None, ["model.size=nano", "augment.mixup_prob=0.3"])
    assert cfg.augment.mixup_prob == 0.3
    cfg, recipe = load_detect_config(None, ["model.size=s"])
    assert recipe == "s" and cfg.augment.mixup_prob == 1.0
    (tmp_path / "c.yaml").write_text("augment:\n  degrees: 3\n")
    cfg, recipe = load_detect_config(str(tmp_path / "c.yaml"), [])
    assert recipe is None and cfg.augment.degrees == 3 and cfg.augment.mixup_prob == 1.0  # the file is the recipe


@pytest.mark.parametrize("epochs, warm, no_aug", [(1, 1 / 15, 0), (6, 0.4, 1), (30, 2.0, 5), (300, 5.0, 15)])
def test_auto_schedule(epochs, warm, no_aug):
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig, resolve_schedule

    cfg, notes = resolve_schedule(load_config(DetectConfig, None, [f"train.epochs={epochs}"]))
    assert cfg.train.warmup_epochs == pytest.approx(warm) and cfg.augment.no_aug_epochs == no_aug and not notes


def test_given_schedule_that_fills_the_run_is_scaled_and_said():
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig, resolve_schedule

    cfg, notes = resolve_schedule(load_config(DetectConfig, None, [
        "train.epochs=4", "train.warmup_epochs=5", "augment.no_aug_epochs=15"]))
    assert len(notes) == 1 and "scaled" in notes[0]
    assert cfg.train.warmup_epochs + cfg.augment.no_aug_epochs < 4 and cfg.augment.no_aug_epochs >= 1


def test_lr_is_flat_up_to_the_reference_batch_then_linear():
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig

    lr = lambda b: load_config(DetectConfig, None, [f"train.batch={b}"]).base_lr()  # noqa: E731
    assert lr(8) == pytest.approx(0.01) and lr(64) == pytest.approx(0.01) and lr(128) == pytest.approx(0.02)
    assert load_config(DetectConfig, None, ["train.batch=8", "train.lr_ref_batch=0"]).base_lr() == pytest.approx(0.00125)


def test_p2_model_has_a_stride_4_level_and_trains_through_the_loss():
    from flowdet.detect.loss import YOLOXLoss
    from flowdet.models.yolox import build_model

    m = build_model("nano", 1, p2=True)
    assert m.strides == (4, 8, 16, 32)
    levels = m(torch.zeros(1, 3, 128, 192))
    assert [tuple(x.shape[-2:]) for x in levels] == [(32, 48), (16, 24), (8, 12), (4, 6)]
    out = YOLOXLoss(1, m.strides, min_k=3)(levels, [torch.tensor([[0, 50.0, 50.0, 54.0, 55.0]])])
    out["total"].backward()
    boxes, scores = m.eval().predict(torch.zeros(1, 3, 128, 192))
    assert boxes.shape[1] == 32 * 48 + 16 * 24 + 8 * 12 + 4 * 6
    # the plain model is unchanged by the option (same keys as before: pretrained backbones still load)
    assert set(build_model("nano", 1).state_dict()) < set(m.state_dict())


@pytest.mark.slow
def test_p2_checkpoint_exports_and_runs_in_the_runtime(tmp_path):
    from flowdet.detect.io import minimal_checkpoint
    from flowdet.export.onnx_export import export_onnx
    from flowdet.models.yolox import build_model
    from flowdet.runtime.predict.predictor import load_predictor

    torch.manual_seed(0)
    m = build_model("nano", 1, p2=True).eval()
    torch.save(minimal_checkpoint(m, ["debris"], (128, 160)), tmp_path / "p2.pt")
    res = export_onnx(tmp_path / "p2.pt", tmp_path / "p2.onnx")
    assert res.meta.strides == [4, 8, 16, 32] and (res.parity is None or res.parity.ok)
    import numpy as np

    pred = load_predictor(str(tmp_path / "p2.onnx"))
    assert len(pred.predict([np.full((100, 130, 3), 80, np.uint8)], conf=0.0)) == 1


def test_soft_objectness_uses_the_iou_as_target():
    from flowdet.detect.loss import YOLOXLoss

    torch.manual_seed(1)
    levels = [torch.randn(1, 6, 640 // s, 640 // s) for s in (8, 16, 32)]
    targets = [torch.tensor([[0, 413.0, 413.0, 417.0, 417.0]])]
    hard, soft = YOLOXLoss(1, min_k=3)(levels, targets), YOLOXLoss(1, min_k=3, soft_obj=True)(levels, targets)
    # random predictions barely overlap a 4 px box: target ≈ 0 instead of 1 changes the objectness term
    assert soft["obj"] != hard["obj"] and soft["iou"] == hard["iou"]
