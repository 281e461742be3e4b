"""YOLOX learning-rate schedule: quadratic warm-up, cosine decay, flat tail for the no-aug epochs."""
from __future__ import annotations

import math

import torch
from torch import nn


class WarmupCosine:
    """lr(it) for it in [0, total): warm-up ``(it/warm)²·base`` (from ``warmup_lr``), then cosine
    from base to ``min_ratio·base``, reaching it at ``total − flat`` and held for the last ``flat``."""

    def __init__(self, base_lr: float, total_iters: int, warmup_iters: int, flat_iters: int = 0,
                 min_ratio: float = 0.05, warmup_lr: float = 0.0):
        if total_iters <= 0:
            raise ValueError("total_iters must be > 0")
        self.base, self.total, self.warm, self.flat = base_lr, total_iters, warmup_iters, flat_iters
        self.min_lr, self.warmup_lr = base_lr * min_ratio, warmup_lr

    def __call__(self, it: int) -> float:
        if self.warm and it < self.warm:
            return (self.base - self.warmup_lr) * (it / self.warm) ** 2 + self.warmup_lr
        end = max(self.total - self.flat, self.warm + 1)
        if it >= end:
            return self.min_lr
        t = (it - self.warm) / max(1, end - self.warm)
        return self.min_lr + 0.5 * (self.base - self.min_lr) * (1 + math.cos(math.pi * t))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on BN weights and biases (YOLOX's three groups collapsed to two)."""
    decay, no_decay = [], []
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if name == "bias" or isinstance(mod, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)):
                no_decay.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr
