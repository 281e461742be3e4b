"""YOLOX.fuse(): BatchNorm folded into convs and the Focus stem folded into one stride-2 conv give
the same outputs as the training-mode graph (in eval), for the depthwise and the dense sizes."""
from __future__ import annotations

import copy

import pytest
import torch

from flowdet.models.blocks import Focus
from flowdet.models.yolox import build_model


@pytest.mark.parametrize("size,hw", [("nano", (64, 96)), ("nano-d", (96, 64)), ("nano-dh", (64, 64)), ("nano-dl", (64, 64))])
def test_fuse_and_focus_fold_are_exact(size, hw):
    torch.manual_seed(0)
    model = build_model(size, 2).eval()
    for m in model.modules():  # non-trivial BN statistics, else folding BN is a no-op
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, *hw) * 255
    fused = copy.deepcopy(model).fuse()
    stem = next(m for m in fused.modules() if isinstance(m, Focus))
    assert stem.folded and stem.conv.conv.kernel_size == (6, 6) and stem.conv.conv.stride == (2, 2)
    with torch.no_grad():
        ref, got = model(x), fused(x)
    for a, b in zip(ref, got):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    fused.fuse()  # idempotent
    assert stem.conv.conv.kernel_size == (6, 6)
