"""A BatchNorm-folded copy of a model that follows it: the semi-supervised teacher's forward passes.

The teacher (an EMA of the student, flowdet.detect.semi) runs in eval mode on every step but changes
after every step, so :meth:`flowdet.models.yolox.YOLOX.fuse` (which rewrites the model) cannot be used
on it. This copy is folded once; :meth:`FoldedCopy.refresh` recomputes its conv weights from the
source's conv + BN tensors in place (a few ms for nano-d), and its forward skips the BN pass: nano-d's
no-grad forward of 8 images at 832×480 on one core took 0.77 s instead of 0.87 s (docs/benchmarks.md).
Same function up to float rounding (|Δ| ≤ 1e-5 on the raw levels, tests/detect/test_folded.py). The
Focus stem is left unfolded (its fold is a layout change whose weights would need the same treatment).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from flowdet.models.blocks import BaseConv, fold_bn


class FoldedCopy:
    """``model`` copied with each BaseConv's BN folded into its conv; call :meth:`refresh` after the
    source changes (in place: the source's tensors must stay the same objects, as ModelEMA keeps them)."""

    def __init__(self, source: nn.Module, channels_last: bool = False):
        self.model = copy.deepcopy(source).eval()
        src_modules = dict(source.named_modules())
        self._folds: list[tuple[nn.Conv2d, BaseConv]] = []
        folded: set[str] = set()
        for name, mod in self.model.named_modules():
            if isinstance(mod, BaseConv) and isinstance(mod.bn, nn.BatchNorm2d):
                mod.fuse()
                src = src_modules[name]
                assert isinstance(src, BaseConv)
                self._folds.append((mod.conv, src))
                folded.add(f"{name}.")
        src_tensors = {**dict(source.named_parameters()), **dict(source.named_buffers())}
        # every other tensor (the head's prediction convs, …) is a plain copy of the source's
        self._copies = [(t, src_tensors[k]) for k, t in (*self.model.named_parameters(), *self.model.named_buffers())
                        if not any(k.startswith(p) for p in folded)]
        for p in self.model.parameters():
            p.requires_grad_(False)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def refresh(self) -> None:
        for conv, src in self._folds:
            weight, bias = fold_bn(src.conv.weight, src.bn)
            conv.weight.copy_(weight)
            assert conv.bias is not None
            conv.bias.copy_(bias)
        for dst, src_t in self._copies:
            dst.copy_(src_t)
