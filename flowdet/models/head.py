"""Decoupled anchor-free YOLOX head and its decoding. Losses and assignment live in flowdet.detect.

Raw level output layout, per stride s: [B, 4 + 1 + C, H/s, W/s] = (dx, dy, log w, log h, obj, cls…).
Decoding: cx = (dx + gx)·s, cy = (dy + gy)·s, w = e^(log w)·s, h = e^(log h)·s; obj/cls by sigmoid.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, conv_kxk


class YOLOXHead(nn.Module):
    def __init__(self, num_classes: int, width: float, in_channels: tuple[int, ...],
                 strides: tuple[int, ...] = (8, 16, 32), depthwise: bool = False, prior_prob: float = 0.01,
                 branch_convs: int = 2):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if branch_convs < 1:
            raise ValueError(f"branch_convs must be >= 1, got {branch_convs}")
        Conv = conv_kxk(depthwise)
        hid = int(256 * width)
        self.num_classes, self.strides = num_classes, tuple(strides)
        self.stems, self.cls_convs, self.reg_convs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.cls_preds, self.reg_preds, self.obj_preds = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for c in in_channels:
            self.stems.append(BaseConv(c, hid, 1, 1))
            self.cls_convs.append(nn.Sequential(*[Conv(hid, hid, 3, 1) for _ in range(branch_convs)]))
            self.reg_convs.append(nn.Sequential(*[Conv(hid, hid, 3, 1) for _ in range(branch_convs)]))
            self.cls_preds.append(nn.Conv2d(hid, num_classes, 1))
            self.reg_preds.append(nn.Conv2d(hid, 4, 1))
            self.obj_preds.append(nn.Conv2d(hid, 1, 1))
        self.init_bias(prior_prob)

    def init_bias(self, prior_prob: float) -> None:
        """cls/obj start at p = prior_prob so early training is not swamped by background loss."""
        b = -math.log((1 - prior_prob) / prior_prob)
        for conv in list(self.cls_preds) + list(self.obj_preds):
            nn.init.constant_(conv.bias, b)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        outs = []
        for i, x in enumerate(feats):
            x = self.stems[i](x)
            c, r = self.cls_convs[i](x), self.reg_convs[i](x)
            outs.append(torch.cat([self.reg_preds[i](r), self.obj_preds[i](r), self.cls_preds[i](c)], 1))
        return outs


def flatten_levels(levels: list[torch.Tensor]) -> torch.Tensor:
    """[B, K, H_l, W_l] per level → [B, N, K] with N = Σ H_l·W_l (row-major per level)."""
    return torch.cat([x.flatten(2) for x in levels], dim=2).permute(0, 2, 1)


def make_grids(levels: list[torch.Tensor], strides: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-point grid (gx, gy) [N, 2] and per-anchor stride [N] matching ``flatten_levels``."""
    grids, strs = [], []
    for x, s in zip(levels, strides):
        h, w = x.shape[-2:]
        yv, xv = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        grids.append(torch.stack((xv, yv), 2).reshape(-1, 2))
        strs.append(torch.full((h * w,), s, device=x.device))
    return torch.cat(grids).float(), torch.cat(strs).float()


def decode_boxes(raw_reg: torch.Tensor, grids: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """raw [B, N, 4] (dx, dy, log w, log h) → cxcywh in input pixels [B, N, 4]."""
    s = strides[None, :, None]
    xy = (raw_reg[..., :2] + grids[None]) * s
    wh = torch.exp(raw_reg[..., 2:4].clamp(max=12.0)) * s  # clamp keeps exp finite for wild outputs
    return torch.cat([xy, wh], -1)
