"""Normalized Gaussian Wasserstein Distance (NWD) between boxes, for tiny-object assignment and loss.

Reference: Wang et al., "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection",
2021, https://arxiv.org/abs/2110.13389 (+6.7 AP on AI-TOD when it replaces IoU in assignment/loss).

A box (cx, cy, w, h) is modelled as the 2-D Gaussian N((cx, cy), diag(w²/4, h²/4)). The squared
2-Wasserstein distance of two such Gaussians is

    W2² = (cx_a − cx_b)² + (cy_a − cy_b)² + ((w_a − w_b)/2)² + ((h_a − h_b)/2)²

and NWD = exp(−√W2² / C), with C a size constant in pixels (the paper: 12.8, AI-TOD's mean object
size). Unlike IoU, NWD is smooth and non-zero for boxes that do not overlap, and a one-pixel offset
costs a 4 px box as much as a 40 px box — which is why it helps tiny objects. fp32 throughout.
"""
from __future__ import annotations

import torch
from torch import nn

from flowdet.core.defaults import NWD_CONSTANT
from flowdet.ops.iou import BOX_FORMATS, xyxy_to_cxcywh

_EPS = 1e-7


def _check_constant(constant: float) -> None:
    if not constant > 0:
        raise ValueError(f"NWD constant must be > 0 (pixels), got {constant}")


def nwd_pairwise(a: torch.Tensor, b: torch.Tensor, constant: float = NWD_CONSTANT) -> torch.Tensor:
    """NWD of every box in ``a`` [N, 4] with every box in ``b`` [M, 4], both xyxy → [N, M] in (0, 1]."""
    _check_constant(constant)
    ca, cb = xyxy_to_cxcywh(a.float()), xyxy_to_cxcywh(b.float())
    d_centre = (ca[:, None, :2] - cb[None, :, :2]).pow(2).sum(-1)
    d_shape = ((ca[:, None, 2:] - cb[None, :, 2:]) / 2).pow(2).sum(-1)
    return torch.exp(-torch.sqrt(d_centre + d_shape + _EPS) / constant)


def nwd(pred: torch.Tensor, target: torch.Tensor, constant: float = NWD_CONSTANT, fmt: str = "cxcywh") -> torch.Tensor:
    """Elementwise NWD of ``pred`` and ``target`` [..., 4] (``fmt`` cxcywh or xyxy) → [...]."""
    _check_constant(constant)
    if fmt not in BOX_FORMATS:
        raise ValueError(f"fmt must be one of {BOX_FORMATS}, got {fmt!r}")
    p, t = pred.float(), target.float()
    if fmt == "xyxy":
        p, t = xyxy_to_cxcywh(p), xyxy_to_cxcywh(t)
    w2 = (p[..., :2] - t[..., :2]).pow(2).sum(-1) + ((p[..., 2:] - t[..., 2:]) / 2).pow(2).sum(-1)
    return torch.exp(-torch.sqrt(w2 + _EPS) / constant)


class NWDLoss(nn.Module):
    """L = 1 − NWD(pred, target), summed or averaged over boxes.

    Shapes: pred, target [F, 4] (``fmt``); returns a scalar ("sum"/"mean") or [F] ("none").

    Raises:
        ValueError: constant <= 0, an unknown fmt or reduction.
    """

    def __init__(self, constant: float = NWD_CONSTANT, reduction: str = "sum", fmt: str = "cxcywh"):
        super().__init__()
        _check_constant(constant)
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be none, mean or sum, got {reduction!r}")
        if fmt not in BOX_FORMATS:
            raise ValueError(f"fmt must be one of {BOX_FORMATS}, got {fmt!r}")
        self.constant, self.reduction, self.fmt = constant, reduction, fmt

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = 1.0 - nwd(pred, target, self.constant, self.fmt)
        if self.reduction == "sum":
            return loss.sum()
        return loss.mean() if self.reduction == "mean" else loss
