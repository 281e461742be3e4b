"""Entropic optimal transport (Sinkhorn) in the log domain, batched — the EMD of Self-EMD.

Reference: Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013;
Peyré & Cuturi, "Computational Optimal Transport", §4.4 (log-domain stabilisation).
"""
from __future__ import annotations

import torch

# log-weights are floored here instead of −inf: a zero-weight row/column then carries ~e^-100 ≈ 0
# mass, and no (−inf) − (−inf) = NaN can appear in the potentials.
_LOG_FLOOR = -100.0


def sinkhorn_emd(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float = 0.05,
                 iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Earth Mover's Distance by entropic Sinkhorn, for a whole batch at once on cost's device.

    Solves  min_T ⟨T, C⟩ − eps·H(T)  s.t.  T·1 = a,  Tᵀ·1 = b  (a, b normalised to sum 1), with
    ``iters`` alternating updates of the dual potentials f, g:

        f_i = eps·log a_i − eps·logsumexp_j((g_j − C_ij) / eps)
        g_j = eps·log b_j − eps·logsumexp_i((f_i − C_ij) / eps)
        T_ij = exp((f_i + g_j − C_ij) / eps),   EMD = Σ_ij T_ij C_ij

    Args:
        cost: [B, N, M] transport cost (e.g. 1 − cosine of local features).
        a: [B, N] non-negative source weights; zero entries (padding) get no mass.
        b: [B, M] non-negative target weights.
        eps: entropic regularisation, in cost units (smaller = closer to exact EMD, slower to converge).
        iters: fixed number of (f, g) update pairs.

    Returns:
        (emd [B], plan [B, N, M]). The plan is computed without autograd and the EMD is ⟨T, C⟩ with T
        held constant, so gradients flow to ``cost`` only (by the envelope theorem this is the
        gradient of the regularised OT value). A batch item whose ``a`` or ``b`` sums to 0 gets
        emd 0 and an all-zero plan. Computed in float32 whatever the input dtype (AMP-safe).
    """
    if cost.dim() != 3:
        raise ValueError(f"cost must be [B, N, M], got {tuple(cost.shape)}")
    bsz, n, m = cost.shape
    if a.shape != (bsz, n) or b.shape != (bsz, m):
        raise ValueError(f"a must be [B, N]={bsz, n} and b [B, M]={bsz, m}, got {tuple(a.shape)}, {tuple(b.shape)}")
    if eps <= 0 or iters < 1:
        raise ValueError(f"eps must be > 0 and iters >= 1, got eps={eps}, iters={iters}")
    c32 = cost.float()
    with torch.no_grad():
        a32, b32 = a.detach().float().clamp_min(0), b.detach().float().clamp_min(0)
        sa, sb = a32.sum(-1, keepdim=True), b32.sum(-1, keepdim=True)
        live = ((sa > 0) & (sb > 0)).float()  # [B, 1]
        log_a = torch.log(a32 / sa.clamp_min(1e-30)).clamp_min(_LOG_FLOOR)
        log_b = torch.log(b32 / sb.clamp_min(1e-30)).clamp_min(_LOG_FLOOR)
        k = -c32.detach() / eps  # [B, N, M]
        f = torch.zeros_like(log_a)
        g = torch.zeros_like(log_b)
        for _ in range(iters):  # potentials kept in units of eps (f/eps, g/eps)
            f = log_a - torch.logsumexp(k + g.unsqueeze(1), dim=2)
            g = log_b - torch.logsumexp(k + f.unsqueeze(2), dim=1)
        plan = torch.exp(k + f.unsqueeze(2) + g.unsqueeze(1)) * live.unsqueeze(-1)
    emd = (plan * c32).sum(dim=(1, 2))
    return emd, plan
