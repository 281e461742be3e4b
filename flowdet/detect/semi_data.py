"""Unlabeled frames for teacher–student training: two views of one frame, and the batches that pair with labeled ones.

A sample is (weak, strong): the frame letterboxed to the batch's input size and flipped or not —
the same geometry for both, so the teacher's dense map (weak) and the student's (strong) align
anchor by anchor — and the strong view adds photometric noise only
(:func:`flowdet.data.transforms.photometric_strong`). Frames are read by the pretraining reader
(:class:`flowdet.mine.frames.FrameStore`).

Exact resume, as for the labeled set (flowdet.data.dataset): a sample's draws come from a generator
seeded by (seed, epoch, index, stream), and which frames a batch takes is a function of (seed, global
iteration) alone: position p of the unlabeled stream is frame perm_c[p mod N] of the permutation of
cycle c = p div N seeded by (seed, c), so every frame is used once before any is used twice, across
epochs. Rank r of a DDP group takes positions r, r + world, … of each global batch.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from flowdet.core.letterbox import letterbox
from flowdet.data.dataset import Key, multiscale_hw
from flowdet.data.transforms import photometric_strong
from flowdet.detect.config import SemiSection

_STREAM = 0x5E31  # keeps the unlabeled draws apart from the labeled set's (seed, epoch, index)


def view_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index, _STREAM])))


class UnlabeledDataset(Dataset):
    """Key ``(index, epoch, h, w)`` → (weak view, strong view), both [h, w, 3] uint8 BGR.

    ``cache_bytes`` > 0 keeps letterboxed frames (before the flip: the part of a view that is the same every
    epoch) in memory until that many bytes are held; later frames are decoded each time. Why: decode +
    letterbox of a 960×540 JPEG to 832×480 cost ~10 ms of the ~20 ms a view pair takes (one core)."""

    def __init__(self, frames: Sequence[Path], img_size: tuple[int, int], semi: SemiSection,
                 hsv_gains: Sequence[float], flip_prob: float, seed: int, cache_bytes: int = 0):
        from flowdet.mine.frames import FrameStore

        self.store = FrameStore(list(frames), None, False)  # own size: the letterbox is the one resize, as in eval
        self.semi, self.hsv_gains, self.flip_prob, self.seed = semi, tuple(hsv_gains), flip_prob, seed
        self.cache_bytes, self.cached_bytes = cache_bytes, 0
        self._canvas: dict[tuple[int, int, int], np.ndarray] = {}  # (index, h, w) → letterboxed frame, read-only

    def __len__(self) -> int:
        return len(self.store)

    def letterboxed(self, index: int, h: int, w: int) -> np.ndarray:
        """Frame ``index`` letterboxed to (h, w), from the cache when it is there (read-only then)."""
        canvas = self._canvas.get((index, h, w))
        if canvas is not None:
            return canvas
        img, _ = self.store.get(index)
        canvas, _ = letterbox(img, (h, w))
        if self.cached_bytes + canvas.nbytes <= self.cache_bytes:
            canvas.setflags(write=False)  # shared by every later view of the frame: nothing may draw on it
            self._canvas[(index, h, w)] = canvas
            self.cached_bytes += canvas.nbytes
        return canvas

    def __getitem__(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        index, epoch, h, w = key
        rng = view_rng(self.seed, epoch, index)
        weak = self.letterboxed(index, h, w)
        if rng.random() < self.flip_prob:
            weak = np.ascontiguousarray(weak[:, ::-1])
        s = self.semi
        strong = photometric_strong(weak, rng, self.hsv_gains, s.blur_prob, s.noise_std, s.cutout, s.cutout_area)
        return weak, strong


def stream_indices(n: int, seed: int, start: int, count: int) -> list[int]:
    """Frames at positions start … start + count − 1 of the unlabeled stream (see the module docstring)."""
    out, perms = [], {}
    for p in range(start, start + count):
        c = p // n
        if c not in perms:
            perms[c] = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + c)).tolist()
        out.append(perms[c][p % n])
    return out


class UnlabeledBatchSampler(Sampler):
    """``iters_per_epoch`` batches of ``per_rank`` keys per epoch, at the input size the labeled batch of
    the same iteration has (multi-scale included: the same (seed, iteration) rule), so both go through
    the student in one forward pass."""

    def __init__(self, n: int, per_rank: int, iters_per_epoch: int, seed: int, img_size: tuple[int, int],
                 rank: int = 0, world: int = 1, multiscale: Sequence[int] = (), every: int = 10):
        self.n, self.per_rank, self.ipe, self.seed = n, per_rank, iters_per_epoch, seed
        self.img_size, self.rank, self.world = tuple(img_size), rank, world
        self.multiscale, self.every, self.epoch = list(multiscale), every, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.ipe

    def __iter__(self) -> Iterator[list[Key]]:
        glob = self.per_rank * self.world
        for b in range(self.ipe):
            it = self.epoch * self.ipe + b
            idx = stream_indices(self.n, self.seed, it * glob, glob)[self.rank::self.world]
            h, w = multiscale_hw(self.seed, it, self.every, self.img_size, self.multiscale)
            yield [(int(i), self.epoch, h, w) for i in idx]


def collate_views(batch: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """→ (weak, strong), each [B, 3, H, W] float32 0–255 BGR."""
    def stack(k: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([b[k] for b in batch])).permute(0, 3, 1, 2).float().contiguous()

    return stack(0), stack(1)


def build_unlabeled_loader(dataset: UnlabeledDataset, sampler: UnlabeledBatchSampler, workers: int,
                           seed: int) -> DataLoader:
    """DataLoader whose ``batch_sampler.set_epoch(e)`` must be called before each epoch."""
    from flowdet.data.dataset import seed_worker

    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_views,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False,
                      # a private generator: creating the iterator must not consume the global torch RNG
                      generator=torch.Generator().manual_seed(seed), worker_init_fn=seed_worker)
