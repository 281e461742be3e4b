"""Patch contrast's loss: an anchor against its positives and negatives (cosine or InfoNCE)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.pretrain.config import PATCH_LOSSES


class PatchContrastLoss(nn.Module):
    """Contrast an anchor with its positives against its negatives, by cosine similarity s(·,·).

    ``cosine`` (the study):   L = −mean_k s(a, p_k) + mean_n s(a, n)
    ``infonce`` (van den Oord et al. 2018, "Representation Learning with Contrastive Predictive
    Coding"; multi-positive as in Khosla et al. 2020):
        L = −mean_k log( e^{s(a,p_k)/τ} / (e^{s(a,p_k)/τ} + Σ_n e^{s(a,n)/τ}) )

    Negatives of anchor i: its own ``negatives`` and, with ``batch_negatives``, every patch (anchor,
    positives, negatives) of the other samples j ≠ i.

    ``exclude`` [B, B·(1+P+K)] bool (optional) removes candidate negatives, e.g. patches of other
    frames at the anchor's position, which in a video are near-copies of it (false negatives).

    Shapes: anchor [B, D], positives [B, P, D], negatives [B, K, D] → scalar loss.
    """

    def __init__(self, loss: str = "cosine", temperature: float = 0.1, batch_negatives: bool = True):
        super().__init__()
        if loss not in PATCH_LOSSES:
            raise ValueError(f"loss must be one of {PATCH_LOSSES}, got {loss!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.loss, self.temperature, self.batch_negatives = loss, temperature, batch_negatives

    def forward(self, anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                exclude: torch.Tensor | None = None) -> torch.Tensor:
        bsz, npos, dim = positives.shape
        a = F.normalize(anchor.float(), dim=-1)
        every = F.normalize(torch.cat([anchor.unsqueeze(1), positives, negatives], 1).float(), dim=-1)  # [B, T, D]
        t = every.shape[1]
        sim = a @ every.reshape(-1, dim).t()  # [B, B·T]: anchor i vs patch t of sample j
        own = torch.eye(bsz, dtype=torch.bool, device=a.device).repeat_interleave(t, dim=1)  # [B, B·T]
        slot = torch.arange(t, device=a.device).repeat(bsz).unsqueeze(0)  # patch slot of each column
        neg_mask = own & (slot > npos)
        if self.batch_negatives:
            neg_mask = neg_mask | ~own
        if exclude is not None:
            neg_mask = neg_mask & ~exclude
        if not neg_mask.any():
            raise ValueError("patch contrast needs negatives: set negatives > 0 or batch_negatives")
        pos_sim = sim[own & (slot >= 1) & (slot <= npos)].view(bsz, npos)  # [B, P]
        if self.loss == "cosine":
            neg_mean = (sim * neg_mask).sum(1) / neg_mask.sum(1).clamp_min(1)
            return (-pos_sim.mean(1) + neg_mean).mean()
        logits = sim / self.temperature
        neg_lse = torch.logsumexp(logits.masked_fill(~neg_mask, float("-inf")), dim=1, keepdim=True)  # [B, 1]
        pos = pos_sim / self.temperature
        return (torch.logaddexp(pos, neg_lse) - pos).mean()
