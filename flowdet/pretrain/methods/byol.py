"""BYOL with a pooled vector — the baseline Self-EMD is built on and benchmarked against.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.pretrain.config import MethodConfig
from flowdet.pretrain.crops import ViewSampler
from flowdet.pretrain.heads import ConvMLP, to_input
from flowdet.pretrain.losses.negative_cosine import NegativeCosineLoss
from flowdet.pretrain.registry import register_method


def target_momentum(step: int, total: int, base: float) -> float:
    """BYOL's schedule: τ = 1 − (1 − τ_base)·(cos(π·step/total) + 1)/2, rising from τ_base to 1."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target ← momentum·target + (1 − momentum)·online, in place; integer buffers (BN counters) copied."""
    tsd = target.state_dict()
    for k, v in online.state_dict().items():
        if v.dtype.is_floating_point:
            tsd[k].mul_(momentum).add_(v.detach(), alpha=1.0 - momentum)
        else:
            tsd[k].copy_(v)


@register_method("byol", sampler=ViewSampler)
class BYOL(nn.Module):
    """Online = backbone → pooled dark5 → projector → predictor; target = EMA copy of backbone +
    projector (``update_target``). Every online view (2 large + small ones) predicts the target of
    each *other* large view. Batch: {"views": uint8 [B, 2, S, S, 3], "small": uint8 [B, K, s, s, 3]}."""

    def __init__(self, backbone: nn.Module, cfg: MethodConfig):
        super().__init__()
        self.backbone = backbone
        c5 = backbone.out_channels[-1]
        self.projector = ConvMLP(c5, cfg.hidden_dim, cfg.proj_dim)
        self.predictor = ConvMLP(cfg.proj_dim, cfg.hidden_dim, cfg.proj_dim)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)
        self.criterion = NegativeCosineLoss()
        self.base_momentum = cfg.momentum

    def target_parameters(self):
        yield from self.target_backbone.parameters()
        yield from self.target_projector.parameters()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        ema_update_(self.target_backbone, self.backbone, momentum)
        ema_update_(self.target_projector, self.projector, momentum)

    def after_step(self, step: int, total: int) -> None:
        self.update_target(target_momentum(step, total, self.base_momentum))

    @staticmethod
    def views_of(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        small = batch.get("small")
        return to_input(batch["views"]), (to_input(small) if small is not None and small.shape[1] > 0 else None)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        bsz = batch["views"].shape[0]
        large, small = self.views_of(batch)  # large: [B·2, ...] ordered (b, view)
        with torch.no_grad():
            z = self.target_projector(_pool(self.target_backbone(large)["dark5"])).flatten(1).view(bsz, 2, -1)
        p = self.predictor(self.projector(_pool(self.backbone(large)["dark5"]))).flatten(1).view(bsz, 2, -1)
        loss = 0.5 * (self.criterion(p[:, 0], z[:, 1]) + self.criterion(p[:, 1], z[:, 0]))
        if small is not None:
            k = batch["small"].shape[1]
            ps = self.predictor(self.projector(_pool(self.backbone(small)["dark5"]))).flatten(1).view(bsz, k, -1)
            terms = [self.criterion(ps[:, i], z[:, j]) for i in range(k) for j in range(2)]
            loss = (2 * loss + sum(terms)) / (2 + len(terms))
        return {"loss": loss}


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1)
