"""CSPDarknet backbone (YOLOX): stem → dark2..dark5, returning the stride-(4)/8/16/32 maps."""
from __future__ import annotations

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, CSPLayer, Focus, SPPBottleneck, conv_kxk

OUT_FEATURES = ("dark3", "dark4", "dark5")


class CSPDarknet(nn.Module):
    """Input [B, 3, H, W] (BGR, 0–255) → {"dark3": [B, 4c, H/8, W/8], "dark4": [B, 8c, H/16, W/16],
    "dark5": [B, 16c, H/32, W/32]} with c = int(64·width)."""

    def __init__(self, depth: float, width: float, depthwise: bool = False):
        super().__init__()
        Conv = conv_kxk(depthwise)
        c = int(width * 64)
        d = max(round(depth * 3), 1)
        self.out_channels = (c * 4, c * 8, c * 16)
        self.dark2_channels = c * 2  # the stride-4 map, used by the optional P2 level
        self.stem = Focus(3, c, ksize=3)
        self.dark2 = nn.Sequential(Conv(c, c * 2, 3, 2), CSPLayer(c * 2, c * 2, d, depthwise=depthwise))
        self.dark3 = nn.Sequential(Conv(c * 2, c * 4, 3, 2), CSPLayer(c * 4, c * 4, d * 3, depthwise=depthwise))
        self.dark4 = nn.Sequential(Conv(c * 4, c * 8, 3, 2), CSPLayer(c * 8, c * 8, d * 3, depthwise=depthwise))
        self.dark5 = nn.Sequential(
            Conv(c * 8, c * 16, 3, 2),
            SPPBottleneck(c * 16, c * 16),
            CSPLayer(c * 16, c * 16, d, shortcut=False, depthwise=depthwise),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        d2 = self.dark2(self.stem(x))
        d3 = self.dark3(d2)
        d4 = self.dark4(d3)
        d5 = self.dark5(d4)
        return {"dark2": d2, "dark3": d3, "dark4": d4, "dark5": d5}


__all__ = ["CSPDarknet", "OUT_FEATURES", "BaseConv"]
