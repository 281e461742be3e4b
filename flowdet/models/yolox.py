"""The YOLOX detector = CSPDarknet + PAFPN + decoupled head, with size presets."""
from __future__ import annotations

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, Focus, RepConv, use_rep_convs
from flowdet.models.darknet import CSPDarknet
from flowdet.models.head import YOLOXHead, decode_boxes, flatten_levels, make_grids
from flowdet.models.pafpn import PAFPN
from flowdet.models.sizes import model_size


def build_backbone(size: str) -> CSPDarknet:
    s = model_size(size)
    backbone = CSPDarknet(s.depth, s.width, s.depthwise)
    if s.rep:
        use_rep_convs(backbone)  # the detector's own layout, so pretrained weights load into it
    return backbone


class YOLOX(nn.Module):
    """``forward(x)`` → raw level outputs (for the losses in flowdet.detect);
    ``predict(x)`` → (boxes xyxy [B, N, 4] in input pixels, scores [B, N, C] = obj·cls)."""

    def __init__(self, size: str = "nano", num_classes: int = 1, p2: bool = False):
        super().__init__()
        s = model_size(size)
        strides = (4, 8, 16, 32) if p2 else (8, 16, 32)
        self.size, self.num_classes, self.strides, self.p2 = size, num_classes, strides, bool(p2)
        self.backbone = CSPDarknet(s.depth, s.width, s.depthwise)
        p2_channels = self.backbone.dark2_channels if p2 else 0
        self.neck = PAFPN(s.depth, self.backbone.out_channels, s.depthwise, p2_channels=p2_channels)
        levels = ((p2_channels,) if p2 else ()) + tuple(self.backbone.out_channels)
        self.head = YOLOXHead(num_classes, s.width, levels, strides, s.head_dw, branch_convs=s.head_branch_convs)
        if s.rep:
            use_rep_convs(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.head(self.neck(self.backbone(x)))

    def decode(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        flat = flatten_levels(levels).float()
        grids, strides = make_grids(levels, self.strides)
        cxcywh = decode_boxes(flat[..., :4], grids, strides)
        half = cxcywh[..., 2:] / 2
        boxes = torch.cat([cxcywh[..., :2] - half, cxcywh[..., :2] + half], -1)
        scores = flat[..., 4:5].sigmoid() * flat[..., 5:].sigmoid()
        return boxes, scores

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.forward(x))

    def fuse(self) -> YOLOX:
        """Fold every BatchNorm into its conv and every RepConv's branches into one conv (inference
        only; call after .eval())."""
        for m in self.modules():
            if isinstance(m, (BaseConv, RepConv)):
                m.fuse()
        for m in self.modules():
            if isinstance(m, Focus):
                m.fold()  # the stem as one stride-2 conv: same outputs, no space-to-depth copy
        return self


def build_model(size: str = "nano", num_classes: int = 1, p2: bool = False) -> YOLOX:
    """A YOLOX of a preset size; ``p2`` adds a stride-4 level (neck + head) for objects under ~8 px."""
    return YOLOX(size, num_classes, p2)
