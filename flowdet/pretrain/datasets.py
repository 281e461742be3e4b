"""The torch Datasets of pretraining, over a :class:`~flowdet.mine.frames.FrameStore` (a method names its
own in its registration, ``FrameDataset`` by default).

Each sample's randomness is ``np.random.default_rng((seed, epoch, index))``: an epoch is
reproducible whatever the worker count or the process that draws it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from flowdet.mine.frames import FrameStore


class FrameDataset(Dataset):
    """Sample ``(epoch, i)`` = ``sampler(frame i mod N, rng(seed, epoch, i))`` — keyed by epoch so
    persistent workers need no notification of a new epoch."""

    def __init__(self, store: FrameStore, sampler: Callable, seed: int, samples_per_frame: int = 1):
        self.store, self.sampler, self.seed, self.k = store, sampler, seed, samples_per_frame

    def __len__(self) -> int:
        return len(self.store) * self.k

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        epoch, i = key
        img, _ = self.store.get(i % len(self.store))
        return self.sampler(img, np.random.default_rng((self.seed, epoch, i)))


class BoxPatchDataset(Dataset):
    """Center-loss patches of labelled images: sample ``(epoch, i)`` = all patches of image ``i``.

    ``rel_boxes[i]`` are xyxy as fractions of the image size (robust to a json size that differs
    from the decoded one). ``fixed=True`` draws the same patches every epoch (the held-out set);
    ``samples_per_image`` > 1 visits each image that many times per epoch (fresh patches each time)."""

    def __init__(self, store: FrameStore, rel_boxes: list[np.ndarray], sampler: Callable, seed: int,
                 fixed: bool = False, samples_per_image: int = 1):
        self.store, self.rel_boxes, self.sampler, self.seed, self.fixed = store, rel_boxes, sampler, seed, fixed
        self.k = samples_per_image

    def __len__(self) -> int:
        return len(self.store) * self.k

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        epoch, i = key
        img, _ = self.store.get(i % len(self.store))
        h, w = img.shape[:2]
        boxes = self.rel_boxes[i % len(self.store)] * np.array([w, h, w, h], np.float32)
        if i % len(self.store) in self.store.bad:
            boxes = boxes[:0]  # the grey stand-in has no objects
        return self.sampler(img, boxes, np.random.default_rng((self.seed, 0 if self.fixed else epoch, i)))


def epoch_indices(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> list[int]:
    """This rank's share of a seeded permutation, padded by wrap-around so every rank has the same count."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    per = -(-n // world)
    order = (order * (per * world // max(n, 1) + 1))[: per * world]
    return order[rank::world]


class CompositeDataset(FrameDataset):
    """Sample ``(epoch, i)``: frame ``i mod N`` is the source of the pasted crops; the two
    backgrounds are other frames drawn by the same per-sample rng (the source itself when N = 1)."""

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        epoch, i = key
        n = len(self.store)
        rng = np.random.default_rng((self.seed, epoch, i))
        src = i % n
        others = [j for j in rng.integers(0, n, 2).tolist()] if n > 1 else [src, src]
        others = [(j + 1) % n if j == src and n > 1 else j for j in others]
        return self.sampler(self.store.get(src)[0], self.store.get(others[0])[0], self.store.get(others[1])[0], rng)
