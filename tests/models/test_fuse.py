"""YOLOX.fuse(): BatchNorm folded into convs and the Focus stem folded into one stride-2 conv give
the same outputs as the training-mode graph (in eval), for the depthwise and the dense sizes."""
from __future__ import annotations

import copy

import pytest
import torch

from flowdet.models.blocks import Focus, RepConv
from flowdet.models.yolox import build_model


@pytest.mark.parametrize("size,hw", [("nano", (64, 96)), ("nano-d", (96, 64)), ("nano-dh", (64, 64)), ("nano-dl", (64, 64)),
                                     ("nano-dr", (64, 96))])
def test_fuse_and_focus_fold_are_exact(size, hw):
    torch.manual_seed(0)
    model = _random_bn(build_model(size, 2).eval())
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


def _random_bn(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():  # non-trivial BN statistics, else folding BN is a no-op
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None and m.bias is not None
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("c_in,c_out,stride", [(8, 8, 1), (8, 16, 1), (8, 8, 2), (6, 12, 2)])
def test_repconv_fuses_into_one_3x3_conv_within_1e_5(c_in, c_out, stride):
    torch.manual_seed(c_in + c_out + stride)
    block = _random_bn(RepConv(c_in, c_out, stride)).eval()
    assert (block.bn_id is not None) == (c_in == c_out and stride == 1)
    x = torch.randn(2, c_in, 17, 20)
    with torch.no_grad():
        ref = block(x)
        block.fuse()
        got = block(x)
    assert block.conv1 is None and block.bn_id is None and isinstance(block.bn, torch.nn.Identity)
    assert block.conv.kernel_size == (3, 3) and block.conv.stride == (stride, stride) and block.conv.bias is not None
    assert (got - ref).abs().max().item() <= 1e-5


def test_nano_dr_fused_is_nano_d_graph_and_equal_to_its_branches():
    torch.manual_seed(0)
    model = _random_bn(build_model("nano-dr", 1)).double().eval()
    assert sum(isinstance(m, RepConv) for m in model.modules()) > 20
    x = torch.rand(1, 3, 64, 96, dtype=torch.float64) * 255
    fused = copy.deepcopy(model).fuse()
    with torch.no_grad():
        ref, got = model(x), fused(x)
    assert max((a - b).abs().max().item() for a, b in zip(ref, got)) <= 1e-5
    dense = build_model("nano-d", 1).eval().fuse()

    def convs(m: torch.nn.Module) -> list[tuple]:
        return [(tuple(c.weight.shape), c.stride, c.groups) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]

    assert convs(fused) == convs(dense)  # what export sees: nano-d's convs, no branch left
