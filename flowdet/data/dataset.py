"""Torch Dataset / sampler / collate for detector training over ``load_coco`` records.

Exact resume and worker-count independence come from one rule: every random draw of a sample is
taken from a numpy Generator seeded by (seed, epoch, index), and the batch order and multi-scale
size from generators seeded by (seed, epoch) and (seed, iteration // K). Nothing reads the global
RNGs, so neither DataLoader workers nor a restart change what the model sees.

The sampler yields *keys* ``(index, epoch, h, w)`` rather than indices so that the input size of
the batch (multi-scale) and the epoch (no-aug tail) travel with each item into worker processes.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from flowdet.core.defaults import IGNORE_CLASS, PAD_VALUE
from flowdet.core.imread import ImageReadError
from flowdet.data.coco import load_image
from flowdet.data.copy_paste import CopyPaste, build_bank
from flowdet.data.records import ImageRecord
from flowdet.data.transforms import AugmentConfig, Augmenter, Sample

Key = tuple[int, int, int, int]  # (index, epoch, h, w)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, index])))


class DetectionDataset(Dataset):
    """Item ``key`` (an int, or ``(index, epoch, h, w)``) → (image HWC uint8, targets [M, 5] float32
    (class, x1, y1, x2, y2), dropped_tiny, dropped_out). Augmentation runs while
    ``augment and epoch < epochs − no_aug_epochs``; ignore/crowd boxes are target rows of class
    ``IGNORE_CLASS`` (−1), moved by the same geometry: regions the loss neither learns nor calls background."""

    def __init__(self, records: Sequence[ImageRecord], img_size: int | tuple[int, int], aug: AugmentConfig,
                 seed: int = 0, epochs: int = 1, augment: bool = True, cache: bool = False):
        self.records = list(records)
        hw = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        self.img_size, self.aug, self.seed, self.epochs, self.augment = hw, aug, seed, epochs, augment
        # Decoded up front so forked workers share the pages copy-on-write.
        self._cache = [_load_or_none(r) for r in self.records] if cache else None
        self.copy_paste = self._copy_paste() if augment and aug.copy_paste > 0 else None
        self.augmenter = Augmenter(aug, self.load, len(self.records), self.copy_paste)

    def __len__(self) -> int:
        return len(self.records)

    def _copy_paste(self) -> CopyPaste | None:
        """The bank of small objects, cut once here (from the cache when there is one); None if empty."""
        a, unreadable = self.aug, _unreadable["count"]
        labels = [(r.boxes[_trained(r)], r.height, r.width) for r in self.records]
        bank = build_bank(labels, self.load, self.img_size, a.copy_paste_side, a.min_box_size, a.copy_paste_bank,
                          self.seed)
        _unreadable["count"] = unreadable  # an unreadable frame is counted when a batch uses it, not here
        return CopyPaste(bank, a.copy_paste_max, a.copy_paste_jitter, a.min_box_size) if len(bank) else None

    def copy_paste_note(self) -> str | None:
        """The start line for copy-paste (None when it is off)."""
        a = self.aug
        if not (self.augment and a.copy_paste > 0):
            return None
        if self.copy_paste is None:
            return (f"note: augment.copy_paste: no training box under {a.copy_paste_side:g} px (input scale) with "
                    "a margin clear of other boxes and edges: nothing to paste")
        b = self.copy_paste.bank
        return (f"copy-paste {a.copy_paste:g}: 1–{a.copy_paste_max} of {len(b)} objects under "
                f"{a.copy_paste_side:g} px (from {b.n_images} frames) per sample, size × 1±{a.copy_paste_jitter:g}")

    def load(self, i: int) -> Sample:
        r = self.records[i]
        try:
            img = self._cache[i] if self._cache is not None else load_image(r)
        except ImageReadError as e:  # one bad file must not end a long run: a blank stands in, counted
            return _unreadable_sample(r, e)
        if img is None:  # cached as unreadable
            return _unreadable_sample(r, None)
        return Sample(img, r.boxes.astype(np.float32), _classes_with_ignore(r))

    def augment_on(self, epoch: int) -> bool:
        return self.augment and epoch < self.epochs - max(0, self.aug.no_aug_epochs)  # -1 (auto) resolved by the trainer

    def __getitem__(self, key: int | Key) -> tuple[np.ndarray, np.ndarray, int, int]:
        index, epoch, h, w = (int(key), 0, *self.img_size) if np.isscalar(key) else key
        res = self.augmenter(index, sample_rng(self.seed, epoch, index), (h, w), self.augment_on(epoch))
        target = np.concatenate([res.classes[:, None].astype(np.float32), res.boxes], 1).reshape(-1, 5)
        return res.img, target.astype(np.float32), res.dropped_tiny, res.dropped_out


def _trained(r: ImageRecord) -> np.ndarray | slice:
    """The boxes training learns from: all but ignore/crowd ones."""
    return ~r.ignore if r.ignore.shape[0] == r.boxes.shape[0] else slice(None)


def _classes_with_ignore(r: ImageRecord) -> np.ndarray:
    """[M] int64: the record's classes with its ignore/crowd boxes as ``IGNORE_CLASS``."""
    classes = r.classes.astype(np.int64)
    if r.ignore.shape[0] == classes.shape[0] and r.ignore.any():
        classes = np.where(r.ignore, IGNORE_CLASS, classes)
    return classes


# Unreadable images met by this process since its last batch: ``collate`` runs in the process (main
# or DataLoader worker) that just built the batch's samples, so it hands the count on in ``info``.
_unreadable = {"count": 0, "warned": set()}


def _unreadable_sample(r: ImageRecord, e: Exception | None) -> Sample:
    _unreadable["count"] += 1
    if e is not None and str(r.file) not in _unreadable["warned"]:  # once per file and process, not once per epoch
        _unreadable["warned"].add(str(r.file))
        from flowdet import log

        log.warn(f"{e} (skipped: a blank image without boxes stands in)", all_ranks=True)
    blank = np.full((max(1, r.height), max(1, r.width), 3), PAD_VALUE, np.uint8)
    return Sample(blank, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))


def _load_or_none(r: ImageRecord) -> np.ndarray | None:
    try:
        return load_image(r)
    except ImageReadError as e:
        _unreadable_sample(r, e)  # warns once
        _unreadable["count"] -= 1  # counted when used, in a batch
        return None


def collate(batch: list[tuple[np.ndarray, np.ndarray, int, int]]) -> tuple[torch.Tensor, list[torch.Tensor], dict]:
    """→ images [B, 3, H, W] float32 0–255 BGR, targets list of [M, 5] (ignore regions: class −1), {"dropped_tiny", "dropped_out",
    "unreadable" (images this batch could not read; blanks stood in)}."""
    imgs = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2).float().contiguous()
    targets = [torch.from_numpy(b[1]) for b in batch]
    info = {"dropped_tiny": sum(b[2] for b in batch), "dropped_out": sum(b[3] for b in batch),
            "unreadable": _unreadable["count"]}
    _unreadable["count"] = 0
    return imgs, targets, info


def multiscale_size(seed: int, iteration: int, every: int, base: int, size_range: Sequence[int]) -> int:
    """Input side at a global iteration: constant for ``every`` iterations, a multiple of 32 drawn
    from ``size_range`` by a generator seeded with the chunk number, so all DDP ranks agree."""
    if not size_range:
        return base
    chunk = iteration // every
    lo, hi = int(size_range[0]) // 32, int(size_range[1]) // 32
    return 32 * int(np.random.default_rng([seed, 0x5CA1E, chunk]).integers(lo, hi + 1))


def multiscale_hw(seed: int, iteration: int, every: int, base: tuple[int, int],
                  size_range: Sequence[int]) -> tuple[int, int]:
    """(H, W) at a global iteration: the width is drawn as :func:`multiscale_size` draws a side, the
    height follows the base aspect ratio (rounded to a multiple of 32), so 960x544 stays ~16:9."""
    h, w = base
    nw = multiscale_size(seed, iteration, every, w, size_range)
    if h == w:
        return nw, nw
    return max(32, int(round(nw * h / w / 32)) * 32), nw


class KeyBatchSampler(Sampler):
    """Batches of keys over an index sampler that has ``set_epoch`` (a DistributedSampler, also used
    with one replica for its seeded shuffle)."""

    def __init__(self, sampler: DistributedSampler, batch_size: int, img_size: int | tuple[int, int], seed: int,
                 multiscale: Sequence[int] = (), every: int = 10, drop_last: bool = False):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.img_size, self.seed, self.multiscale, self.every = img_size, seed, list(multiscale), every
        self.epoch, self.scale_on = 0, True

    def set_epoch(self, epoch: int, scale_on: bool = True) -> None:
        self.epoch, self.scale_on = epoch, scale_on
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[Key]]:
        per_epoch, batch = len(self), []
        b = 0
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield self._keys(batch, b, per_epoch)
                batch, b = [], b + 1
        if batch and not self.drop_last:
            yield self._keys(batch, b, per_epoch)

    def _keys(self, idxs: list[int], b: int, per_epoch: int) -> list[Key]:
        h, w = self.img_size
        if self.scale_on:
            h, w = multiscale_hw(self.seed, self.epoch * per_epoch + b, self.every, self.img_size, self.multiscale)
        return [(int(i), self.epoch, h, w) for i in idxs]


def build_loader(dataset: DetectionDataset, batch_size: int, workers: int, seed: int, shuffle: bool = True,
                 rank: int = 0, world: int = 1, multiscale: Sequence[int] = (), every: int = 10) -> DataLoader:
    """DataLoader whose ``batch_sampler.set_epoch(e)`` must be called before each epoch."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    batches = KeyBatchSampler(sampler, batch_size, dataset.img_size, seed, multiscale, every)
    return DataLoader(
        dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        # A private generator: creating the iterator must not consume the global torch RNG.
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=seed_worker,
    )


def seed_worker(worker_id: int) -> None:
    # Augmentation never reads global RNGs, but third-party code might: make them deterministic too.
    info = torch.utils.data.get_worker_info()
    base = info.seed if info is not None else worker_id
    np.random.seed(base % 2**32)
    import random

    random.seed(base)
