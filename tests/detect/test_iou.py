"""IoU / GIoU / CIoU against values worked out by hand, gradients, and degenerate boxes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowdet.core.boxes import box_iou as np_box_iou
from flowdet.ops.iou import IoULoss, box_iou_pairwise, cxcywh_to_xyxy, iou_family, xyxy_to_cxcywh

# (pred xyxy, target xyxy, IoU, GIoU, CIoU), each worked out by hand:
HAND = [
    # Two 2×2 squares offset by (1, 1): inter 1, union 4 + 4 − 1 = 7, enclosing 3×3 = 9.
    # GIoU = 1/7 − (9 − 7)/9 = −5/63. CIoU: ρ² = 1² + 1² = 2, c² = 3² + 3² = 18, same aspect → v = 0:
    # CIoU = 1/7 − 2/18 = 2/63.
    ([0, 0, 2, 2], [1, 1, 3, 3], 1 / 7, -5 / 63, 2 / 63),
    # 4×2 against 2×4 at the origin: inter 2×2 = 4, union 8 + 8 − 4 = 12, enclosing 4×4 = 16.
    # GIoU = 1/3 − 4/16 = 1/12. CIoU: centres (2, 1) and (1, 2) → ρ² = 2, c² = 32 → ρ²/c² = 1/16;
    # v = 4/π² (atan(2/4) − atan(4/2))² = 0.405285 · 0.643501² = 0.167826,
    # α = v / (1 − 1/3 + v) = 0.167826 / 0.834493 = 0.201112, αv = 0.033752 → CIoU = 1/3 − 1/16 − 0.033752 = 0.237081.
    ([0, 0, 4, 2], [0, 0, 2, 4], 1 / 3, 1 / 12, 0.237081),
    # Disjoint unit squares 1 px apart: IoU 0, union 2, enclosing 3×1 = 3 → GIoU = −1/3;
    # ρ² = 2² = 4, c² = 3² + 1² = 10, v = 0 → CIoU = −0.4.
    ([0, 0, 1, 1], [2, 0, 3, 1], 0.0, -1 / 3, -0.4),
]


@pytest.mark.parametrize("pred,target,iou,giou,ciou", HAND)
def test_hand_computed_values(pred, target, iou, giou, ciou):
    p, t = torch.tensor([pred], dtype=torch.float32), torch.tensor([target], dtype=torch.float32)
    for kind, want in (("iou", iou), ("giou", giou), ("ciou", ciou)):
        got = iou_family(p, t, kind, fmt="xyxy")
        assert got.shape == (1,)
        assert got.item() == pytest.approx(want, abs=1e-5), kind
        # Same boxes in cxcywh give the same value.
        assert iou_family(xyxy_to_cxcywh(p), xyxy_to_cxcywh(t), kind).item() == pytest.approx(want, abs=1e-5)


def test_ciou_aspect_term_formula():
    v = 4 / math.pi**2 * (math.atan(0.5) - math.atan(2.0)) ** 2
    alpha = v / (1 - 1 / 3 + v)
    assert 1 / 3 - 1 / 16 - alpha * v == pytest.approx(HAND[1][4], abs=1e-6)


def test_pairwise_matches_numpy_and_elementwise():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 2, generator=g) * 50
    a = torch.cat([xy, xy + 1 + torch.rand(7, 2, generator=g) * 30], 1)
    xy = torch.rand(5, 2, generator=g) * 50
    b = torch.cat([xy, xy + 1 + torch.rand(5, 2, generator=g) * 30], 1)
    pair = box_iou_pairwise(a, b)
    assert pair.shape == (7, 5)
    np.testing.assert_allclose(pair.numpy(), np_box_iou(a.numpy(), b.numpy()), atol=1e-5)
    elem = iou_family(a[:, None].expand(-1, 5, -1), b[None].expand(7, -1, -1), "iou", fmt="xyxy")
    torch.testing.assert_close(elem, pair)


def test_variants_ordered_and_shapes():
    g = torch.Generator().manual_seed(1)
    p = torch.cat([torch.rand(2, 3, 2, generator=g) * 20, 1 + torch.rand(2, 3, 2, generator=g) * 10], -1)
    t = torch.cat([torch.rand(2, 3, 2, generator=g) * 20, 1 + torch.rand(2, 3, 2, generator=g) * 10], -1)
    iou, giou, ciou = (iou_family(p, t, k) for k in ("iou", "giou", "ciou"))
    assert iou.shape == giou.shape == ciou.shape == (2, 3)
    assert torch.all(giou <= iou + 1e-6) and torch.all(ciou <= iou + 1e-6)


def test_disjoint_boxes_ciou_has_gradient_iou_has_none():
    target = torch.tensor([[30.0, 10.0, 4.0, 4.0]])  # cxcywh, 20 px right of the prediction
    grads = {}
    for kind in ("iou", "giou", "ciou"):
        pred = torch.tensor([[10.0, 10.0, 4.0, 6.0]], requires_grad=True)
        IoULoss(kind, reduction="sum")(pred, target).backward()
        grads[kind] = pred.grad[0]
    assert torch.all(grads["iou"] == 0)
    assert grads["ciou"].abs().sum() > 0 and grads["giou"].abs().sum() > 0
    assert grads["ciou"][0] < 0  # a descent step moves the centre right, towards the target


@pytest.mark.parametrize("kind", ["iou", "giou", "ciou"])
def test_zero_size_boxes_are_finite(kind):
    pred = torch.tensor([[5.0, 5.0, 0.0, 0.0], [5.0, 5.0, 0.0, 0.0], [5.0, 5.0, 3.0, 0.0], [1.0, 1.0, -2.0, 2.0]],
                        requires_grad=True)
    target = torch.tensor([[5.0, 5.0, 0.0, 0.0], [6.0, 6.0, 4.0, 4.0], [5.0, 5.0, 3.0, 3.0], [1.0, 1.0, 2.0, 2.0]])
    value = iou_family(pred, target, kind)
    assert torch.isfinite(value).all()
    IoULoss(kind, reduction="sum")(pred, target).backward()
    assert torch.isfinite(pred.grad).all()


def test_fp32_inside_and_out():
    p = torch.tensor([[0, 0, 2, 2]], dtype=torch.float16)
    t = torch.tensor([[1, 1, 3, 3]], dtype=torch.bfloat16)
    assert iou_family(p, t, "ciou", fmt="xyxy").dtype == torch.float32
    assert box_iou_pairwise(p, t).dtype == torch.float32


def test_loss_forms_and_reductions():
    p, t = torch.tensor([[0.0, 0, 4, 2]]), torch.tensor([[0.0, 0, 2, 4]])
    assert IoULoss("iou", fmt="xyxy")(p, t).item() == pytest.approx(1 - (1 / 3) ** 2, abs=1e-5)  # YOLOX's 1 − IoU²
    assert IoULoss("giou", fmt="xyxy")(p, t).item() == pytest.approx(1 - 1 / 12, abs=1e-5)
    assert IoULoss("ciou", fmt="xyxy")(p, t).item() == pytest.approx(1 - 0.237081, abs=1e-5)
    empty = torch.zeros(0, 4)
    assert IoULoss("ciou", reduction="mean")(empty, empty).item() == 0.0
    assert IoULoss("ciou", reduction="sum")(empty, empty).item() == 0.0


def test_format_roundtrip():
    b = torch.tensor([[1.0, 2.0, 5.0, 9.0]])
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(b)), b)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        IoULoss("diou")
    with pytest.raises(ValueError):
        IoULoss("ciou", reduction="avg")
    with pytest.raises(ValueError):
        IoULoss("ciou", fmt="xywh")
    with pytest.raises(ValueError):
        iou_family(torch.zeros(2, 4), torch.zeros(3, 4))
