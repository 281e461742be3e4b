"""The IoU family in torch: pairwise IoU for assignment, elementwise IoU/GIoU/CIoU for the box loss.

Everything here is computed in fp32 (inputs are cast inside): under autocast the area of a 640 px
box (409,600) overflows fp16 (max 65,504), and bf16's 8-bit mantissa rounds small overlaps away.

References:
    - GIoU: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019,
      https://arxiv.org/abs/1902.09630
    - CIoU: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box
      Regression", AAAI 2020, https://arxiv.org/abs/1911.08287
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

IoUKind = Literal["iou", "giou", "ciou"]
BoxFormat = Literal["cxcywh", "xyxy"]
IOU_KINDS: tuple[str, ...] = ("iou", "giou", "ciou")
BOX_FORMATS: tuple[str, ...] = ("cxcywh", "xyxy")
_REDUCTIONS = ("none", "mean", "sum")


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] (cx, cy, w, h) → [..., 4] (x1, y1, x2, y2)."""
    half = boxes[..., 2:4] / 2
    return torch.cat([boxes[..., :2] - half, boxes[..., :2] + half], dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] (x1, y1, x2, y2) → [..., 4] (cx, cy, w, h)."""
    return torch.cat([(boxes[..., :2] + boxes[..., 2:4]) / 2, boxes[..., 2:4] - boxes[..., :2]], dim=-1)


def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of every box in ``a`` with every box in ``b`` (xyxy), in fp32.

    Args:
        a: Boxes, shape [N, 4] xyxy.
        b: Boxes, shape [M, 4] xyxy.
        eps: Added to the union so that two zero-size boxes give IoU 0, not NaN.

    Returns:
        IoU, shape [N, M].
    """
    a, b = a.float(), b.float()
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + eps)


def iou_family(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: IoUKind = "iou",
    fmt: BoxFormat = "cxcywh",
    eps: float = 1e-7,
) -> torch.Tensor:
    """Elementwise IoU, GIoU or CIoU of matching boxes, in fp32.

    - IoU  = |P ∩ T| / |P ∪ T|
    - GIoU = IoU − (|C| − |P ∪ T|) / |C|, C the smallest enclosing box
    - CIoU = IoU − ρ²/c² − α·v, where ρ is the distance between the box centres, c the diagonal of
      C, v = 4/π² · (atan(w_t/h_t) − atan(w_p/h_p))² and α = v / (1 − IoU + v). As in the CIoU
      paper α is a trade-off weight, not a function to differentiate: it carries no gradient.

    IoU is 0 for every pair of disjoint boxes, so its gradient vanishes there; GIoU and CIoU keep a
    gradient that pulls the prediction towards the target (the reason flowdet trains with CIoU).

    Args:
        pred: Predicted boxes, shape [..., 4].
        target: Target boxes, shape [..., 4] (same shape as ``pred``).
        kind: "iou", "giou" or "ciou".
        fmt: "cxcywh" or "xyxy" for both inputs.
        eps: Added to every denominator; widths and heights are clamped at 0, so zero-size and
            inverted boxes give finite values and gradients.

    Returns:
        The variant, shape [...] (IoU in [0, 1]; GIoU in [−1, 1]; CIoU in [−1.5, 1]).
    """
    if kind not in IOU_KINDS:
        raise ValueError(f"kind must be one of {IOU_KINDS}, got {kind!r}")
    if fmt not in BOX_FORMATS:
        raise ValueError(f"fmt must be one of {BOX_FORMATS}, got {fmt!r}")
    if pred.shape != target.shape or pred.shape[-1:] != (4,):
        raise ValueError(f"pred and target must both be [..., 4], got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.float(), target.float()
    if fmt == "cxcywh":
        pred, target = cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target)

    wp = (pred[..., 2] - pred[..., 0]).clamp(min=0)
    hp = (pred[..., 3] - pred[..., 1]).clamp(min=0)
    wt = (target[..., 2] - target[..., 0]).clamp(min=0)
    ht = (target[..., 3] - target[..., 1]).clamp(min=0)
    iw = (torch.minimum(pred[..., 2], target[..., 2]) - torch.maximum(pred[..., 0], target[..., 0])).clamp(min=0)
    ih = (torch.minimum(pred[..., 3], target[..., 3]) - torch.maximum(pred[..., 1], target[..., 1])).clamp(min=0)
    inter = iw * ih
    union = wp * hp + wt * ht - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou

    # Smallest enclosing box C.
    cw = torch.maximum(pred[..., 2], target[..., 2]) - torch.minimum(pred[..., 0], target[..., 0])
    ch = torch.maximum(pred[..., 3], target[..., 3]) - torch.minimum(pred[..., 1], target[..., 1])
    if kind == "giou":
        enclose = cw * ch + eps
        return iou - (enclose - union) / enclose

    diag_sq = cw**2 + ch**2 + eps
    centre_dist_sq = ((pred[..., 0] + pred[..., 2] - target[..., 0] - target[..., 2]) ** 2
                      + (pred[..., 1] + pred[..., 3] - target[..., 1] - target[..., 3]) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(wt / (ht + eps)) - torch.atan(wp / (hp + eps))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - centre_dist_sq / diag_sq - alpha * v


class IoULoss(nn.Module):
    """Box regression loss from the IoU family.

    - kind="iou":  L = 1 − IoU²   (YOLOX's and mmdetection-YOLOX's default, ``mode="square"``)
    - kind="giou": L = 1 − GIoU
    - kind="ciou": L = 1 − CIoU

    For "iou" we match YOLOX (1 − IoU², not 1 − IoU) on purpose: the "iou" setting is the baseline
    the reference study measured CIoU against, so it must be that baseline's loss. The squared form
    weights poorly-overlapping boxes slightly less; like 1 − IoU it has no gradient when the boxes
    are disjoint. GIoU and CIoU use the plain 1 − variant of their papers (and of mmdetection).

    Attributes:
        kind: "iou", "giou" or "ciou" (see :func:`iou_family`).
        reduction: "none", "mean" or "sum".
        fmt: Box format of both inputs, "cxcywh" or "xyxy".
        eps: Denominator guard, see :func:`iou_family`.

    Raises:
        ValueError: On an unknown kind, reduction or format, or eps <= 0.

    Examples:
        >>> loss_fn = IoULoss("ciou", reduction="sum")
        >>> loss = loss_fn(pred_cxcywh, target_cxcywh)  # both [num_fg, 4]
    """

    def __init__(self, kind: IoUKind = "ciou", reduction: str = "none", fmt: BoxFormat = "cxcywh", eps: float = 1e-7):
        super().__init__()
        if kind not in IOU_KINDS:
            raise ValueError(f"kind must be one of {IOU_KINDS}, got {kind!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if fmt not in BOX_FORMATS:
            raise ValueError(f"fmt must be one of {BOX_FORMATS}, got {fmt!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.kind, self.reduction, self.fmt, self.eps = kind, reduction, fmt, eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of matching boxes.

        Args:
            pred: Predicted boxes, shape [..., 4].
            target: Target boxes, shape [..., 4].

        Returns:
            Shape [...] for reduction "none", else a scalar. fp32.
        """
        value = iou_family(pred, target, self.kind, self.fmt, self.eps)
        loss = 1 - value**2 if self.kind == "iou" else 1 - value
        if self.reduction == "mean":
            return loss.sum() / max(loss.numel(), 1)  # 0, not NaN, when there are no boxes
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}, fmt={self.fmt!r}"
