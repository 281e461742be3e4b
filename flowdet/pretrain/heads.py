"""Small heads shared by the pretraining methods; none of them is exported with the backbone."""
from __future__ import annotations

import torch
from torch import nn


def to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 crops [..., S, S, 3] (BGR) → float [prod(...), 3, S, S] in 0–255, the detector's input contract."""
    s = x.shape
    return x.reshape(-1, s[-3], s[-2], s[-1]).permute(0, 3, 1, 2).float().contiguous()


class EmbedHead(nn.Module):
    """The reference study's patch embedding: dark5 [B, C, h, w] → 3 × (conv3×3 + BN + ReLU)
    (C → hidden → hidden → out) → adaptive avg-pool to ``pool``×``pool`` → flatten [B, out·pool²].

    The adaptive pool (the study had a fixed avg-pool 2 on 7×7 maps) keeps the embedding size
    independent of the crop size."""

    def __init__(self, c_in: int, hidden: int = 128, out: int = 32, pool: int = 2):
        super().__init__()
        if min(c_in, hidden, out, pool) < 1:
            raise ValueError(f"EmbedHead sizes must be ≥ 1, got c_in={c_in}, hidden={hidden}, out={out}, pool={pool}")
        layers: list[nn.Module] = []
        for ci, co in ((c_in, hidden), (hidden, hidden), (hidden, out)):
            layers += [nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.dim = out * pool * pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x)).flatten(1)


class ConvMLP(nn.Module):
    """BYOL's projector/predictor MLP (Linear → BN → ReLU → Linear) written with 1×1 convs, so the
    same weights map a pooled vector [B, C, 1, 1] and a dense map [B, C, H, W] into one space —
    Self-EMD's global path and local path stay comparable (its marginal weights are dot products
    between them)."""

    def __init__(self, c_in: int, hidden: int, out: int):
        super().__init__()
        if min(c_in, hidden, out) < 1:
            raise ValueError(f"ConvMLP sizes must be ≥ 1, got {c_in}, {hidden}, {out}")
        self.net = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
