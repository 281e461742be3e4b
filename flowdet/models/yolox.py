"""The YOLOX detector = CSPDarknet + PAFPN + decoupled head, with size presets."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, Focus
from flowdet.models.darknet import CSPDarknet
from flowdet.models.head import YOLOXHead, decode_boxes, flatten_levels, make_grids
from flowdet.models.pafpn import PAFPN


@dataclass(frozen=True)
class ModelSize:
    depth: float
    width: float
    depthwise: bool
    head_depthwise: bool | None = None  # None: same as the backbone/neck
    head_branch_convs: int = 2  # 3×3 convs in each of the cls and reg branches (YOLOX: 2)

    @property
    def head_dw(self) -> bool:
        return self.depthwise if self.head_depthwise is None else self.head_depthwise


MODEL_SIZES = {
    "nano": ModelSize(0.33, 0.25, True),
    # nano's widths with full 3×3 convs: ~2× nano's CPU latency, still under YOLO26n's (docs/benchmarks.md);
    # dense convs learn faster from scratch than depthwise ones and run at a higher FLOP rate on CPU.
    "nano-d": ModelSize(0.33, 0.25, False),
    # nano-d with nano's depthwise head: the four 3×3 head convs per level were ~19% of nano-d's CPU
    # latency at stride 8 alone; depthwise there buys ~1.3× the input pixels at the same latency.
    "nano-dh": ModelSize(0.33, 0.25, False, head_depthwise=True),
    # nano-d with one 3×3 conv per head branch instead of two: halves the head's cost at every level.
    "nano-dl": ModelSize(0.33, 0.25, False, head_branch_convs=1),
    "tiny": ModelSize(0.33, 0.375, False),
    "s": ModelSize(0.33, 0.50, False),
    "m": ModelSize(0.67, 0.75, False),
}


def _size(name: str) -> ModelSize:
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown model size '{name}' (choose from {', '.join(MODEL_SIZES)})")
    return MODEL_SIZES[name]


def build_backbone(size: str) -> CSPDarknet:
    s = _size(size)
    return CSPDarknet(s.depth, s.width, s.depthwise)


class YOLOX(nn.Module):
    """``forward(x)`` → raw level outputs (for the losses in flowdet.detect);
    ``predict(x)`` → (boxes xyxy [B, N, 4] in input pixels, scores [B, N, C] = obj·cls)."""

    def __init__(self, size: str = "nano", num_classes: int = 1, p2: bool = False):
        super().__init__()
        s = _size(size)
        strides = (4, 8, 16, 32) if p2 else (8, 16, 32)
        self.size, self.num_classes, self.strides, self.p2 = size, num_classes, strides, bool(p2)
        self.backbone = CSPDarknet(s.depth, s.width, s.depthwise)
        p2_channels = self.backbone.dark2_channels if p2 else 0
        self.neck = PAFPN(s.depth, self.backbone.out_channels, s.depthwise, p2_channels=p2_channels)
        levels = ((p2_channels,) if p2 else ()) + tuple(self.backbone.out_channels)
        self.head = YOLOXHead(num_classes, s.width, levels, strides, s.head_dw, branch_convs=s.head_branch_convs)

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

    def fuse(self) -> "YOLOX":
        """Fold every BatchNorm into its conv (inference only; call after .eval())."""
        for m in self.modules():
            if isinstance(m, BaseConv):
                m.fuse()
        for m in self.modules():
            if isinstance(m, Focus):
                m.fold()  # the stem as one stride-2 conv: same outputs, no space-to-depth copy
        return self


def build_model(size: str = "nano", num_classes: int = 1, p2: bool = False) -> YOLOX:
    """A YOLOX of a preset size; ``p2`` adds a stride-4 level (neck + head) for objects under ~8 px."""
    return YOLOX(size, num_classes, p2)
