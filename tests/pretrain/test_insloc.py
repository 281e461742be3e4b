"""InsLoc: composite generation (boxes inside, scale range, same pixels pasted), the loss, a run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowdet.pretrain.composite import CompositeSampler
from flowdet.pretrain.train import build_datasets, pretrain

from .conftest import tiny_cfg
from .test_methods import _decreases, _losses


def _cfg(frames, **kw):
    base = {"method.name": "insloc", "data.frames": f"[{frames}]", "method.crop": 64, "method.paste_scale": "[8, 24]",
            "method.hidden_dim": 64, "method.proj_dim": 32, "method.temperature": 0.2, "train.batch": 4}
    base.update(kw)
    return tiny_cfg(**base)


def test_composites_keep_boxes_inside_and_sides_in_the_scale_range(smooth_frames):
    cfg = _cfg(smooth_frames, **{"method.instances": 6, "method.paste_aspect": 1.5})
    ds, _, _ = build_datasets(cfg)
    lo, hi = cfg.method.paste_scale
    s = cfg.method.crop
    for i in range(12):
        out = ds[(0, i)]
        assert out["views"].shape == (2, s, s, 3) and out["views"].dtype == np.uint8
        assert out["boxes"].shape == (2, 6, 4) and out["pasted"].shape == (2, 6, 4)
        for boxes in (out["boxes"], out["pasted"]):
            assert (boxes >= 0).all() and (boxes <= s).all()
            assert (boxes[..., 2:] > boxes[..., :2]).all()
        wh = out["pasted"][..., 2:] - out["pasted"][..., :2]
        side = np.sqrt(wh.prod(-1))
        assert (side >= lo - 1).all() and (side <= hi + 1).all(), side  # ±1 px: integer rounding
        ratio = wh[..., 0] / wh[..., 1]
        assert (ratio <= 1.5 * 1.15).all() and (ratio >= 1 / (1.5 * 1.15)).all()
    a, b = ds[(0, 3)], ds[(0, 3)]
    assert all(np.array_equal(a[k], b[k]) for k in a)  # a pure function of (seed, epoch, index)


def test_the_same_source_pixels_are_pasted_into_both_composites():
    cfg = _cfg("x", **{"method.instances": 1, "method.paste_scale": "[16, 16]", "method.paste_aspect": 1.0,
                       "method.source_scale": "[1, 1]", "aug.color_p": 0, "aug.gray_p": 0, "method.box_jitter": 0})
    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    bg = np.zeros((100, 100, 3), np.uint8)
    out = CompositeSampler(cfg.method, cfg.aug)(src, bg, bg, np.random.default_rng(1))
    crops = []
    for v in range(2):
        x0, y0, x1, y1 = out["pasted"][v, 0].astype(int)
        assert (x1 - x0, y1 - y0) == (16, 16)
        crops.append(out["views"][v, y0:y1, x0:x1])
        assert np.array_equal(out["boxes"][v], out["pasted"][v])  # no jitter asked
    assert np.array_equal(crops[0], crops[1]) and crops[0].std() > 10  # the source crop, not the background
    assert out["views"][0].sum() == crops[0].sum()  # the rest is the (black) background


def test_insloc_config_checks_the_paste_scale_fits():
    from flowdet.config import ConfigError
    from flowdet.pretrain.config import validate

    with pytest.raises(ConfigError, match="method.paste_scale"):
        validate(_cfg("x", **{"method.crop": 32, "method.paste_scale": "[8, 32]"}))


def test_insloc_loss_decreases(smooth_frames):
    losses = _losses(_cfg(smooth_frames, **{"method.instances": 2, "method.roi_levels": "[dark3]"}), 14, lr=2e-3)
    assert _decreases(losses, k=4), losses
    assert math.log(4 * 2) * 0.5 < losses[0]  # starts near chance (log of 8 candidates), not at 0


def test_insloc_pretrain_run_writes_a_backbone(smooth_frames, tmp_path):
    s = pretrain(_cfg(smooth_frames, **{"train.out": str(tmp_path), "train.max_steps": 2, "train.batch": 2}))
    art = torch.load(tmp_path / "backbone.pt", weights_only=True)
    assert art["method"] == "insloc" and s["frames"] == 8 and math.isfinite(s["final_loss"])
    assert "acc" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
