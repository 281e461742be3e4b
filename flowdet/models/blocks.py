"""Conv building blocks of YOLOX (BN eps 1e-3, momentum 0.03, SiLU)."""
from __future__ import annotations

import torch
from torch import nn

BN_EPS, BN_MOMENTUM = 1e-3, 0.03


class BaseConv(nn.Module):
    """Conv2d (no bias) → BatchNorm → SiLU. ``fuse()`` folds the BN into the conv for inference."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, ksize, stride, (ksize - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        if isinstance(self.bn, nn.Identity):
            return
        conv, bn = self.conv, self.bn
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          conv.padding, groups=conv.groups, bias=True).to(conv.weight.device, conv.weight.dtype)
        weight, bias = fold_bn(conv.weight, bn)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.conv, self.bn = fused, nn.Identity()


@torch.no_grad()
def fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(kernel, bias) of the one conv that computes eval-mode ``bn(conv(x))`` for a bias-free conv
    with weights ``kernel``: BaseConv.fuse, RepConv.fuse's three branches and the folded teacher."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class DWConv(nn.Module):
    """Depthwise k×k then pointwise 1×1 (the nano model's conv)."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int = 1):
        super().__init__()
        self.dconv = BaseConv(c_in, c_in, ksize, stride, groups=c_in)
        self.pconv = BaseConv(c_in, c_out, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


def conv_kxk(depthwise: bool):
    return DWConv if depthwise else BaseConv


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, expansion: float = 0.5, depthwise: bool = False):
        super().__init__()
        hidden = int(c_out * expansion)
        self.conv1 = BaseConv(c_in, hidden, 1, 1)
        self.conv2 = conv_kxk(depthwise)(hidden, c_out, 3, 1)
        self.use_add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """Cross-stage partial block: two 1×1 branches, n bottlenecks on one, concatenated, 1×1 out."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True, expansion: float = 0.5,
                 depthwise: bool = False):
        super().__init__()
        hidden = int(c_out * expansion)
        self.conv1 = BaseConv(c_in, hidden, 1, 1)
        self.conv2 = BaseConv(c_in, hidden, 1, 1)
        self.conv3 = BaseConv(2 * hidden, c_out, 1, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut, 1.0, depthwise) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), dim=1))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (5, 9, 13) between two 1×1 convs."""

    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        hidden = c_in // 2
        self.conv1 = BaseConv(c_in, hidden, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernels])
        self.conv2 = BaseConv(hidden * (len(kernels) + 1), c_out, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [m(x) for m in self.m], dim=1))


class Focus(nn.Module):
    """Space-to-depth (2×2 pixels → 4 channels) then a conv: the stem."""

    def __init__(self, c_in: int, c_out: int, ksize: int = 3):
        super().__init__()
        self.conv = BaseConv(c_in * 4, c_out, ksize, 1)
        self.folded = False  # True after fold(): self.conv.conv is one stride-2 conv on the full image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            return self.conv(x)
        tl, bl = x[..., ::2, ::2], x[..., 1::2, ::2]
        tr, br = x[..., ::2, 1::2], x[..., 1::2, 1::2]
        return self.conv(torch.cat((tl, bl, tr, br), dim=1))

    @torch.no_grad()
    def fold(self) -> None:
        """Space-to-depth + k×k conv → one 2k×2k stride-2 conv on the image, the same function
        (YOLOv5 6.0 made the same swap). Why: onnxruntime runs the 12-channel conv and the
        SpaceToDepth copy in ~11% of nano-d's CPU latency at 832×480; one conv skips the copy.
        Exact: group g = (row offset ry, col offset rx) of the 2×2 cell and tap (dy, dx) of the
        k×k kernel read image pixel (2i + 2(dy − p) + ry, ...) — tap 2dy + ry of a 2k kernel with
        padding 2p. Inference only (inside :meth:`YOLOX.fuse`)."""
        if self.folded:
            return
        conv = self.conv.conv
        k, p = conv.kernel_size[0], conv.padding[0]
        c_in = conv.in_channels // 4
        big = nn.Conv2d(c_in, conv.out_channels, 2 * k, 2, 2 * p, bias=conv.bias is not None)
        big = big.to(conv.weight.device, conv.weight.dtype)
        w = conv.weight.reshape(conv.out_channels, 4, c_in, k, k)  # groups in forward's order: tl, bl, tr, br
        # the four (ry, rx) strided slices together cover every tap of the 2k×2k kernel
        for g, (ry, rx) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            big.weight[:, :, ry::2, rx::2] = w[:, g]
        if conv.bias is not None:
            big.bias.copy_(conv.bias)
        self.conv.conv, self.folded = big, True


class RepConv(nn.Module):
    """RepVGG-style 3×3 conv (Ding et al., CVPR 2021): in training, 3×3 conv + BN, 1×1 conv + BN and
    — same channels, stride 1 — a BN of the input itself, summed, then SiLU; ``fuse()`` folds the
    three into one 3×3 conv with bias, the same function in eval mode (a 1×1 kernel is a 3×3 one
    that is zero but its centre; the identity is a 3×3 kernel with 1 at the centre of channel i → i).
    Why: the branches train like a wider block, while the exported model pays for one dense 3×3 conv
    (the op AVX2 CPUs run fastest); nothing of them is left in ONNX."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv1: nn.Module | None = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
        self.bn1: nn.Module | None = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        same = c_in == c_out and stride == 1
        self.bn_id: nn.Module | None = nn.BatchNorm2d(c_in, eps=BN_EPS, momentum=BN_MOMENTUM) if same else None
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1 is None or self.bn1 is None:  # fused
            return self.act(self.conv(x))
        y = self.bn(self.conv(x)) + self.bn1(self.conv1(x))
        return self.act(y + self.bn_id(x) if self.bn_id is not None else y)

    @torch.no_grad()
    def fuse(self) -> None:
        if self.conv1 is None or self.bn1 is None:
            return
        assert isinstance(self.bn, nn.BatchNorm2d) and isinstance(self.bn1, nn.BatchNorm2d)
        w, b = fold_bn(self.conv.weight, self.bn)
        w1, b1 = fold_bn(self.conv1.weight, self.bn1)
        w, b = w + nn.functional.pad(w1, [1, 1, 1, 1]), b + b1
        if isinstance(self.bn_id, nn.BatchNorm2d):
            eye = torch.zeros_like(w)
            idx = torch.arange(w.shape[0], device=w.device)
            eye[idx, idx, 1, 1] = 1.0
            wi, bi = fold_bn(eye, self.bn_id)
            w, b = w + wi, b + bi
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, 3, self.conv.stride, 1,
                          bias=True).to(w.device, w.dtype)
        fused.weight.copy_(w)
        assert fused.bias is not None
        fused.bias.copy_(b)
        self.conv, self.bn, self.conv1, self.bn1, self.bn_id = fused, nn.Identity(), None, None, None


def use_rep_convs(module: nn.Module) -> nn.Module:
    """Every dense 3×3 :class:`BaseConv` under ``module`` → a fresh :class:`RepConv` of the same shape
    and stride (the Focus stem stays: its fold into one stride-2 conv needs a plain conv)."""
    for name, child in module.named_children():
        if isinstance(child, Focus):
            continue
        conv = child.conv if isinstance(child, BaseConv) else None
        if conv is not None and conv.kernel_size == (3, 3) and conv.groups == 1:
            setattr(module, name, RepConv(conv.in_channels, conv.out_channels, conv.stride[0]))
        else:
            use_rep_convs(child)
    return module
