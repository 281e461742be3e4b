"""Patch contrast — the reference FloW study's self-supervision, with the InfoNCE variant.

An anchor patch, its spatially adjacent patches (positives) and distant patches (negatives: far
positions of the same frame, and — unlike the study — every patch of the other frames in the batch)
are embedded by backbone → dark5 → ``EmbedHead``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.pretrain.config import MethodConfig
from flowdet.pretrain.crops import PatchGridSampler
from flowdet.pretrain.heads import EmbedHead, to_input
from flowdet.pretrain.losses.patch_contrast import PatchContrastLoss
from flowdet.pretrain.registry import register_method


@register_method("patch-contrast", sampler=PatchGridSampler)
class PatchContrast(nn.Module):
    """backbone + ``EmbedHead`` + ``PatchContrastLoss``. Batch: {"patches": uint8 [B, 1+P+K, S, S, 3]}
    with slot 0 the anchor, 1..P the positives, the rest the same-frame negatives, and optionally
    "centres" [B, 1+P+K, 2] (patch units): other frames' patches closer than ``min_neg_dist`` to the
    anchor's position are dropped from its negatives (frames of one video are near-copies)."""

    def __init__(self, backbone: nn.Module, cfg: MethodConfig):
        super().__init__()
        if cfg.negatives == 0 and not cfg.batch_negatives:
            raise ValueError("patch contrast needs negatives > 0 or batch_negatives")
        self.backbone = backbone
        self.head = EmbedHead(backbone.out_channels[-1], cfg.head_channels, cfg.embed_channels, cfg.embed_pool)
        self.criterion = PatchContrastLoss(cfg.loss, cfg.temperature, cfg.batch_negatives)
        self.npos, self.min_dist = cfg.positives, cfg.min_neg_dist

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """float [N, 3, S, S] → embeddings [N, D]."""
        return self.head(self.backbone(x)["dark5"])

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        patches = batch["patches"]
        bsz, t = patches.shape[:2]
        z = self.embed(to_input(patches)).view(bsz, t, -1)
        exclude = None
        if "centres" in batch:  # other frames' patches near the anchor's position are not negatives
            c = batch["centres"].float()  # [B, T, 2] in patch sides
            d = torch.cdist(c[:, 0], c.reshape(-1, 2))  # [B, B·T]
            exclude = d < self.min_dist
        loss = self.criterion(z[:, 0], z[:, 1:1 + self.npos], z[:, 1 + self.npos:], exclude)
        with torch.no_grad():
            pos = F.cosine_similarity(z[:, :1], z[:, 1:1 + self.npos], dim=-1).mean()
        return {"loss": loss, "pos_cos": pos}
