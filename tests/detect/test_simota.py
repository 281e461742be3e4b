"""SimOTA on hand-made scenes at 640 px (8400 anchors) and on a 4×4 grid small enough to reason about."""
from __future__ import annotations

import pytest
import torch

from flowdet.detect.simota import _dynamic_k_matching, _pair_cost, simota_assign
from flowdet.models.head import make_grids
from flowdet.ops.iou import cxcywh_to_xyxy


def grid(size: int = 640, strides: tuple[int, ...] = (8, 16, 32)) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-cell centres [N, 2] and strides [N] of a size×size input."""
    levels = [torch.zeros(1, 6, size // s, size // s) for s in strides]
    cells, strs = make_grids(levels, strides)
    return (cells + 0.5) * strs[:, None], strs


def anchor_boxes(centres: torch.Tensor, side: torch.Tensor | float) -> torch.Tensor:
    """Each anchor predicts a square of ``side`` px on its own centre, [N, 4] cxcywh."""
    side = torch.as_tensor(side, dtype=torch.float32).expand(centres.shape[0])
    return torch.cat([centres, side[:, None].expand(-1, 2)], 1)


def assign(pred, centres, strides, gt, scores=None):
    scores = torch.full((pred.shape[0], 1), 0.5) if scores is None else scores
    return simota_assign(pred, scores, centres, strides, gt, torch.zeros(gt.shape[0], dtype=torch.long))


BIG = [100.0, 100.0, 300.0, 300.0]
TINY_AT_GRID = [501.0, 501.0, 505.0, 505.0]  # 4 px around the stride-16 anchor centre (504, 504)
TINY_OFF_GRID = [413.0, 413.0, 417.0, 417.0]  # 4 px with no anchor centre of any stride inside


def test_every_box_gets_a_positive_and_big_boxes_get_more():
    centres, strides = grid()
    pred = anchor_boxes(centres, 8 * strides)  # 64/128/256 px boxes
    gt = torch.tensor([BIG, [40.0, 500.0, 120.0, 560.0], TINY_AT_GRID, TINY_OFF_GRID])
    a = assign(pred, centres, strides, gt)
    per_box = torch.bincount(a.matched_gt, minlength=4)
    assert torch.all(per_box >= 1), per_box
    assert per_box[0] > per_box[2] and per_box[0] > per_box[3]
    assert a.fg_mask.sum() == a.num_fg == a.matched_gt.numel() == a.matched_iou.numel()
    assert a.matched_classes.tolist() == [0] * a.num_fg
    assert a.matched_iou.dtype == torch.float32


def test_tiny_box_without_anchor_inside_gets_its_cheapest_anchor_even_at_iou_zero():
    centres, strides = grid()
    gt = torch.tensor([TINY_OFF_GRID])
    x, y = centres[:, 0], centres[:, 1]
    assert not ((x > 413) & (x < 417) & (y > 413) & (y < 417)).any()  # the premise of the test
    pred = anchor_boxes(centres, 2.0)  # 2 px predictions: none touches the box
    scores = torch.full((pred.shape[0], 1), 0.1)
    best = ((x - 415).abs() < 20) & ((y - 415).abs() < 20) & (strides == 8)
    scores[best.nonzero()[0]] = 0.9  # one centre-region anchor is clearly the cheapest
    a = assign(pred, centres, strides, gt, scores)
    assert a.num_fg == 1  # dynamic k = max(1, floor(0)) = 1
    assert a.fg_mask.nonzero()[0].item() == best.nonzero()[0].item()
    assert a.matched_iou.item() == 0.0  # the "miss" case that only CIoU/GIoU can pull in


def test_tiny_box_whose_anchor_goes_to_a_big_box_still_gets_one():
    centres, strides = grid()
    # A 4 px box at the centre of a 200 px box; every anchor predicts a 200 px box, so the one
    # anchor centre inside the tiny box (stride 16 at (200, 200)) is the big box's best anchor too.
    gt = torch.tensor([BIG, [198.0, 198.0, 202.0, 202.0]])
    pred = anchor_boxes(centres, 200.0)
    labels = torch.zeros(2, dtype=torch.long)
    scores = torch.full((pred.shape[0], 1), 0.5)
    x, y = centres[None, :, 0], centres[None, :, 1]
    in_box = (x > gt[:, 0:1]) & (x < gt[:, 2:3]) & (y > gt[:, 1:2]) & (y < gt[:, 3:4])
    in_centre = ((x - 200).abs() < 2.5 * strides) & ((y - 200).abs() < 2.5 * strides)
    cost, iou = _pair_cost(cxcywh_to_xyxy(pred), scores, gt, labels, in_box, in_centre.expand(2, -1))
    raw = _dynamic_k_matching(cost, iou, topk=10)
    assert raw[1].sum() == 0  # plain SimOTA leaves the tiny box without a positive
    a = simota_assign(pred, scores, centres, strides, gt, labels)
    per_box = torch.bincount(a.matched_gt, minlength=2)
    assert per_box[1] == 1 and per_box[0] == raw[0].sum()


def test_no_anchor_is_claimed_twice():
    centres, strides = grid()
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 600
    gt = torch.cat([xy, xy + 4 + torch.rand(50, 2, generator=g) * 60], 1)  # 50 overlapping boxes
    pred = anchor_boxes(centres, 8 * strides) + torch.randn(centres.shape[0], 4, generator=g)
    scores = torch.rand(centres.shape[0], 1, generator=g)
    x, y = centres[None, :, 0], centres[None, :, 1]
    in_box = (x > gt[:, 0:1]) & (x < gt[:, 2:3]) & (y > gt[:, 1:2]) & (y < gt[:, 3:4])
    cost, iou = _pair_cost(cxcywh_to_xyxy(pred), scores, gt, torch.zeros(50, dtype=torch.long), in_box, in_box)
    assert _dynamic_k_matching(cost, iou, topk=10).sum(0).max() <= 1
    a = assign(pred, centres, strides, gt, scores)
    assert torch.bincount(a.matched_gt, minlength=50).min() >= 1
    assert a.fg_mask.sum() == a.matched_gt.numel()


def test_dynamic_k_on_a_4x4_grid():
    centres, strides = grid(32, (8,))  # centres at 4, 12, 20, 28
    gt = torch.tensor([[4.0, 4.0, 28.0, 28.0]])  # anchors 5, 6, 9, 10 have their centre inside
    pred = anchor_boxes(centres, 1.0)  # 1 px boxes: IoU ≈ 0
    pred[[5, 6, 9]] = torch.tensor([16.0, 16.0, 24.0, 24.0])  # exactly the box: IoU 1
    pred[10] = torch.tensor([16.0, 14.8, 24.0, 21.6])  # IoU 0.9
    a = assign(pred, centres, strides, gt)
    # k = floor(1 + 1 + 1 + 0.9 + ~0) = 3: the three exact predictions, not the fourth.
    assert a.fg_mask.nonzero().squeeze(1).tolist() == [5, 6, 9]
    torch.testing.assert_close(a.matched_iou, torch.ones(3))


def test_class_cost_prefers_the_confident_anchor():
    centres, strides = grid(32, (8,))
    gt = torch.tensor([[4.0, 4.0, 28.0, 28.0]])
    pred = anchor_boxes(centres, 1.0)
    pred[[5, 6]] = torch.tensor([16.0, 16.0, 24.0, 24.0])
    pred[[5, 6], 2] = 20.0  # both IoU 20/24: k = floor(1.67) = 1
    scores = torch.full((16, 2), 0.05)
    scores[6, 1] = 0.9  # anchor 6 is confident about class 1
    a = simota_assign(pred, scores, centres, strides, gt, torch.tensor([1]))
    assert a.fg_mask.nonzero().squeeze(1).tolist() == [6]
    assert a.matched_classes.tolist() == [1]


def test_no_boxes_and_dtypes():
    centres, strides = grid(64)
    pred = anchor_boxes(centres, 16.0).half()
    a = assign(pred, centres, strides, torch.zeros(0, 4))
    assert a.num_fg == 0 and not a.fg_mask.any() and a.fg_mask.shape == (centres.shape[0],)
    a = simota_assign(pred, torch.full((pred.shape[0], 1), 0.5, dtype=torch.float16), centres, strides,
                      torch.tensor([[10.0, 10.0, 30.0, 30.0]]), torch.tensor([0]))
    assert a.num_fg >= 1 and a.matched_iou.dtype == torch.float32


def test_invalid_inputs():
    centres, strides = grid(64)
    pred = anchor_boxes(centres, 16.0)
    with pytest.raises(ValueError):
        simota_assign(pred, torch.rand(pred.shape[0], 1), centres, strides, torch.tensor([[0.0, 0, 8, 8]]), torch.tensor([1]))
    with pytest.raises(ValueError):
        simota_assign(pred[:-1], torch.rand(pred.shape[0], 1), centres, strides, torch.zeros(0, 4), torch.zeros(0))
