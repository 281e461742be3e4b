"""YOLOX PAFPN neck: top-down FPN then bottom-up PAN over dark3/dark4/dark5."""
from __future__ import annotations

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, CSPLayer, conv_kxk


class PAFPN(nn.Module):
    """(dark3 [B,C3,H/8], dark4 [B,C4,H/16], dark5 [B,C5,H/32]) → three maps with the same channels.

    With ``p2_channels`` (the dark2 width) the top-down path goes one level further, to stride 4,
    and the bottom-up path starts there: four maps (P2 [B,C2,H/4], P3, P4, P5). A 6 px object
    covers 1.5 cells at stride 4 and under one at stride 8 (YOLOv5-P2 / TPH-YOLO do the same)."""

    def __init__(self, depth: float, in_channels: tuple[int, int, int], depthwise: bool = False,
                 p2_channels: int = 0):
        super().__init__()
        Conv = conv_kxk(depthwise)
        c3, c4, c5 = in_channels
        n = round(3 * depth)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c5, c4, 1, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, n, False, depthwise=depthwise)
        self.reduce_conv1 = BaseConv(c4, c3, 1, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, n, False, depthwise=depthwise)
        self.bu_conv2 = Conv(c3, c3, 3, 2)
        self.C3_n3 = CSPLayer(2 * c3, c4, n, False, depthwise=depthwise)
        self.bu_conv1 = Conv(c4, c4, 3, 2)
        self.C3_n4 = CSPLayer(2 * c4, c5, n, False, depthwise=depthwise)
        self.p2 = p2_channels > 0
        if self.p2:
            c2 = p2_channels
            self.reduce_conv2 = BaseConv(c3, c2, 1, 1)
            self.C3_p2 = CSPLayer(2 * c2, c2, n, False, depthwise=depthwise)
            self.bu_conv3 = Conv(c2, c2, 3, 2)
            self.C3_n2 = CSPLayer(2 * c2, c3, n, False, depthwise=depthwise)

    def forward(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        x2, x1, x0 = feats["dark3"], feats["dark4"], feats["dark5"]
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x2], 1))
        p2_out = None
        if self.p2:
            fpn_out2 = self.reduce_conv2(pan_out2)
            p2_out = self.C3_p2(torch.cat([self.upsample(fpn_out2), feats["dark2"]], 1))
            pan_out2 = self.C3_n2(torch.cat([self.bu_conv3(p2_out), fpn_out2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return (pan_out2, pan_out1, pan_out0) if p2_out is None else (p2_out, pan_out2, pan_out1, pan_out0)
