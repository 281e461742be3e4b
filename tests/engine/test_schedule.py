"""Warm-up + cosine learning rate, parameter groups without decay on norm/bias, EMA."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from flowdet.engine.ema import ModelEMA  # noqa: E402
from flowdet.engine.schedule import WarmupCosine, param_groups, set_lr  # noqa: E402


def test_warmup_is_quadratic_then_cosine_then_flat():
    s = WarmupCosine(0.01, total_iters=100, warmup_iters=10, flat_iters=20, min_ratio=0.05)
    assert s(0) == 0.0
    assert s(5) == pytest.approx(0.01 * 0.25)
    assert s(10) == pytest.approx(0.01)
    assert s(45) == pytest.approx(0.0005 + 0.5 * (0.01 - 0.0005) * (1 + math.cos(math.pi * 35 / 70)))
    assert s(80) == s(99) == pytest.approx(0.0005)
    lrs = [s(i) for i in range(10, 81)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_param_groups_put_bn_and_bias_in_the_no_decay_group():
    from flowdet.models.yolox import build_model

    m = build_model("nano", 1)
    decay, no_decay = param_groups(m, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    n_params = sum(1 for _ in m.parameters())
    assert len(decay["params"]) + len(no_decay["params"]) == n_params
    bn = {id(p) for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d) for p in mod.parameters()}
    assert bn and bn <= {id(p) for p in no_decay["params"]}
    assert all(p.ndim == 4 for p in decay["params"])  # conv kernels only
    opt = torch.optim.SGD([decay, no_decay], lr=0.1, momentum=0.9, nesterov=True)
    set_lr(opt, 0.02)
    assert all(g["lr"] == 0.02 for g in opt.param_groups)


def test_ema_ramps_up_and_tracks_the_model():
    m = torch.nn.Linear(3, 1)
    ema = ModelEMA(m, decay=0.9, tau=1.0)
    assert ema.decay() == 0.0
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    d = 0.9 * (1 - math.exp(-1))
    assert ema.decay() == pytest.approx(d)
    state = ema.state_dict()
    other = ModelEMA(torch.nn.Linear(3, 1), decay=0.9, tau=1.0)
    other.load_state_dict(state)
    assert other.updates == 1 and torch.equal(other.ema.weight, ema.ema.weight)
    assert not any(p.requires_grad for p in ema.ema.parameters())
    with pytest.raises(ValueError):
        ModelEMA(m, decay=1.5)
