"""Self-EMD's loss: the earth mover's distance between two dense maps (Sinkhorn, weighted marginals)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.pretrain.losses.sinkhorn import sinkhorn_emd


class EMDLoss(nn.Module):
    """Self-EMD's distance between an online dense map and a target dense map:

        C_ij = 1 − cos(p_i, z_j)
        a_i  = relu(⟨p̂_i, ẑ_glob⟩) / Σ_k relu(⟨p̂_k, ẑ_glob⟩) + w_eps     (0 on masked rows)
        b_j  = relu(⟨ẑ_j, p̂_glob⟩) / Σ_k relu(⟨ẑ_k, p̂_glob⟩) + w_eps
        L    = 2 · Σ_ij T_ij C_ij,  T = Sinkhorn(C, a, b)

    (p̂ = p/‖p‖; each side is weighted by the OTHER view's global vector; weights carry no gradient).
    The factor 2 makes L equal BYOL's 2 − 2cos when both maps are a single vector.

    Shapes: p_local [B, N, D], p_mask [B, N] bool (False = padding / outside an SPC window),
    z_local [B, M, D], p_global [B, D], z_global [B, D] → scalar (mean over B).
    """

    def __init__(self, eps: float = 0.05, iters: int = 10, weight_eps: float = 1e-3):
        super().__init__()
        if eps <= 0 or iters < 1 or weight_eps < 0:
            raise ValueError(f"need eps > 0, iters ≥ 1, weight_eps ≥ 0; got {eps}, {iters}, {weight_eps}")
        self.eps, self.iters, self.weight_eps = eps, iters, weight_eps

    def marginal(self, local: torch.Tensor, other_global: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = F.relu((local * other_global.unsqueeze(1)).sum(-1)) * mask
        return (w / w.sum(-1, keepdim=True).clamp_min(1e-12) + self.weight_eps) * mask

    def forward(self, p_local: torch.Tensor, p_mask: torch.Tensor, z_local: torch.Tensor,
                p_global: torch.Tensor, z_global: torch.Tensor) -> torch.Tensor:
        p = F.normalize(p_local.float(), dim=-1)
        z = F.normalize(z_local.detach().float(), dim=-1)
        cost = 1.0 - p @ z.transpose(1, 2)  # [B, N, M]
        with torch.no_grad():
            a = self.marginal(p, F.normalize(z_global.detach().float(), dim=-1), p_mask.float())
            b = self.marginal(z, F.normalize(p_global.detach().float(), dim=-1), torch.ones_like(z[..., 0]))
        emd, _ = sinkhorn_emd(cost, a, b, self.eps, self.iters)
        return 2.0 * emd.mean()
