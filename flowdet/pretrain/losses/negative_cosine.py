"""BYOL's regression loss: 2 − 2·cos(prediction, target)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NegativeCosineLoss(nn.Module):
    """BYOL's regression loss  L = 2 − 2·cos(p, z)  (z is a target: no gradient).

    Shapes: p [B, D], z [B, D] → scalar (mean over the batch)."""

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (2.0 - 2.0 * F.cosine_similarity(p.float(), z.detach().float(), dim=-1)).mean()
