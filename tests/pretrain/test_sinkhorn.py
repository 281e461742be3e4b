"""Sinkhorn EMD against exact solvers, and its NaN safety."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment, linprog

from flowdet.pretrain.losses.emd import EMDLoss
from flowdet.pretrain.losses.sinkhorn import sinkhorn_emd


def _cosine_cost(b: int, n: int, m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(b, n, 16, generator=g), dim=-1)
    y = F.normalize(torch.randn(b, m, 16, generator=g), dim=-1)
    return 1.0 - x @ y.transpose(1, 2)


def _exact_lp(cost: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    n, m = cost.shape
    a_eq = np.zeros((n + m, n * m))
    for i in range(n):
        a_eq[i, i * m:(i + 1) * m] = 1.0
    for j in range(m):
        a_eq[n + j, j::m] = 1.0
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.concatenate([a / a.sum(), b / b.sum()]), bounds=(0, None),
                  method="highs")
    assert res.success
    return float(res.fun)


def test_uniform_marginals_match_assignment():
    """Equal uniform marginals: the optimal plan is a permutation (Birkhoff) → Hungarian algorithm."""
    cost = _cosine_cost(6, 9, 9, seed=0)
    u = torch.full((6, 9), 1.0 / 9)
    emd, plan = sinkhorn_emd(cost, u, u, eps=0.005, iters=500)
    for i in range(6):
        c = cost[i].numpy()
        r, k = linear_sum_assignment(c)
        exact = c[r, k].mean()
        assert emd[i].item() == pytest.approx(exact, rel=0.02)
    assert torch.allclose(plan.sum(1), u, atol=1e-4)  # column marginals hold exactly after a g-update


def test_weighted_marginals_match_linprog():
    cost = _cosine_cost(4, 7, 5, seed=1)
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(4, 7, generator=g) + 0.05, torch.rand(4, 5, generator=g) + 0.05
    emd, _ = sinkhorn_emd(cost, a, b, eps=0.005, iters=1000)
    for i in range(4):
        exact = _exact_lp(cost[i].double().numpy(), a[i].double().numpy(), b[i].double().numpy())
        assert emd[i].item() == pytest.approx(exact, rel=0.02)


def test_zero_weight_rows_never_nan():
    cost = _cosine_cost(3, 6, 4, seed=3).requires_grad_(True)
    a = torch.rand(3, 6)
    a[0, :3] = 0.0  # padding rows
    a[1] = 0.0  # a whole problem without mass
    b = torch.rand(3, 4)
    b[2, 0] = 0.0
    for eps in (0.5, 0.05, 0.001):
        emd, plan = sinkhorn_emd(cost, a, b, eps=eps, iters=20)
        emd.sum().backward()
        assert torch.isfinite(emd).all() and torch.isfinite(plan).all() and torch.isfinite(cost.grad).all()
        assert plan[0, :3].sum() < 1e-6 and plan[2, :, 0].sum() < 1e-6
        assert emd[1].item() == 0.0 and plan[1].abs().sum() == 0
        cost.grad = None


def test_half_precision_cost_is_solved_in_float32():
    cost = _cosine_cost(2, 5, 5, seed=4)
    u = torch.full((2, 5), 0.2)
    e32, _ = sinkhorn_emd(cost, u, u, eps=0.05, iters=50)
    e16, _ = sinkhorn_emd(cost.half(), u.half(), u.half(), eps=0.05, iters=50)
    assert e16.dtype == torch.float32
    assert torch.allclose(e16, e32, atol=2e-3)


def test_argument_validation():
    c = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError):
        sinkhorn_emd(c, torch.ones(2, 4), torch.ones(2, 4))
    with pytest.raises(ValueError):
        sinkhorn_emd(c, torch.ones(2, 3), torch.ones(2, 4), eps=0.0)
    with pytest.raises(ValueError):
        EMDLoss(iters=0)


def test_emd_loss_is_byol_loss_for_single_vectors_and_masks_padding():
    g = torch.Generator().manual_seed(5)
    p, z = torch.randn(4, 1, 8, generator=g), torch.randn(4, 1, 8, generator=g)
    loss = EMDLoss(eps=0.05, iters=5)
    ones = torch.ones(4, 1, dtype=torch.bool)
    expected = (2 - 2 * F.cosine_similarity(p[:, 0], z[:, 0], dim=-1)).mean()
    assert loss(p, ones, z, p[:, 0], z[:, 0]).item() == pytest.approx(expected.item(), rel=1e-5)
    # padding rows (masked) change nothing, whatever their content
    p_pad = torch.cat([p, torch.zeros(4, 3, 8)], 1)
    mask = torch.cat([ones, torch.zeros(4, 3, dtype=torch.bool)], 1)
    out = loss(p_pad.requires_grad_(True), mask, z, p[:, 0], z[:, 0])
    out.backward()
    assert out.item() == pytest.approx(expected.item(), rel=1e-4)
    assert torch.isfinite(p_pad.grad).all()
