"""ModelEMA: the decay ramps as decay·(1 − e^(−updates/tau)); a short tau makes a short run average."""
from __future__ import annotations

import pytest
from torch import nn

from flowdet.config import ConfigError, apply_overrides
from flowdet.detect.config import DetectConfig, validate
from flowdet.engine.ema import ModelEMA


def _ema_after(tau: float, steps: int) -> float:
    model = nn.Linear(1, 1, bias=False)
    ema = ModelEMA(model, 0.9998, tau=tau)
    for i in range(steps):  # weights walk 1, 2, …, steps; the EMA lags them by its horizon
        model.weight.data.fill_(float(i + 1))
        ema.update(model)
    return ema.ema.weight.item()


def test_short_tau_averages_over_more_steps_than_the_default_in_a_short_run():
    steps = 1080  # 30 epochs × 36 iterations: the Grogol benchmark run
    lag_default, lag_short = steps - _ema_after(2000.0, steps), steps - _ema_after(216.0, steps)
    assert lag_default < 3  # d ≈ 0.42 at the end: the EMA is the last ~2 steps
    assert 50 < lag_short < 300  # a horizon of a few epochs


def test_ema_tau_must_be_positive():
    cfg = apply_overrides(DetectConfig(), ["data.train=x.json", "train.ema_tau=0"])
    with pytest.raises(ConfigError, match="train.ema_tau"):
        validate(cfg)


def test_tau_zero_means_no_ramp_the_teachers_decay_from_the_first_update():
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    ema = ModelEMA(model, 0.99, tau=0)  # the semi-supervised teacher: a trained copy, averaged at once
    assert ema.decay() == 0.99
    model.weight.data.fill_(1.0)
    ema.update(model)
    assert ema.ema.weight.item() == pytest.approx(0.01)
