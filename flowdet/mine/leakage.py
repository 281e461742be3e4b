"""Leakage guard: no pretraining frame may be an image of the val/test set (torch-free).

Pretraining on the evaluation images inflates every number measured on them, silently. So
``data.exclude`` (``--exclude val.json``) lists the held-out sets and each frame is compared with
each of their images by **content**, not by name:

- identical: SHA-1 of the decoded pixels (with the shape). Chosen over file bytes because a copy
  whose bytes differ but whose pixels do not (re-saved PNG, stripped EXIF, another container) is
  the same image to the network; file bytes would miss it, pixels catch every byte-identical copy too;
- near-duplicate (``data.exclude_near``, on by default): the same picture at another resolution or
  JPEG quality — the same aspect (±2 %), 64-bit dHash within 10 bits, and the 32×18 grayscale
  thumbnails within a mean absolute difference of 0.01 (the threshold ``flowdet mine`` drops
  duplicates at, so "near-duplicate" means the same thing everywhere in flowdet).

Cost: every frame and excluded image is decoded once (~5–15 ms each at 640–1080 px on one core).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowdet import log
from flowdet.errors import DataError

NEAR_MAD = 0.01  # = flowdet mine's default --dedupe
NEAR_BITS = 10
ASPECT_TOL = 0.02


@dataclass
class Fingerprint:
    sha1: str  # decoded pixels + shape
    dhash: int  # 64-bit difference hash
    thumb: np.ndarray  # 18×32 float32 grayscale in [0, 1]
    aspect: float  # width / height


def fingerprint(img: np.ndarray) -> Fingerprint:
    from flowdet.mine.miner import dhash, thumbnail

    h = hashlib.sha1(str(img.shape).encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return Fingerprint(h.hexdigest(), int(dhash(img), 16), thumbnail(img), img.shape[1] / img.shape[0])


def _fingerprints(paths: list[Path]) -> list[Fingerprint | None]:
    from flowdet.core.imread import try_read_image

    out: list[Fingerprint | None] = []
    for p in paths:
        img, _ = try_read_image(p)
        out.append(None if img is None else fingerprint(img))  # unreadable: the frame loader reports it
    return out


def find_leaks(frames: list[Path], excluded: list[Path], near: bool = True) -> list[tuple[int, Path, str]]:
    """(frame index, the excluded image it matches, "identical pixels" | "near-duplicate") per leaked frame."""
    if not frames or not excluded:
        return []
    ex = [(p, f) for p, f in zip(excluded, _fingerprints(excluded)) if f is not None]
    by_sha = {f.sha1: p for p, f in ex}
    ex_hash = np.array([f.dhash for _, f in ex], dtype=np.uint64)
    ex_aspect = np.array([f.aspect for _, f in ex])
    out: list[tuple[int, Path, str]] = []
    for i, f in enumerate(_fingerprints(frames)):
        if f is None:
            continue
        if f.sha1 in by_sha:
            out.append((i, by_sha[f.sha1], "identical pixels"))
            continue
        if not near or not ex:
            continue
        bits = np.unpackbits((ex_hash ^ np.uint64(f.dhash)).view(np.uint8).reshape(-1, 8), axis=1).sum(1)
        cand = np.nonzero((bits <= NEAR_BITS) & (np.abs(ex_aspect / f.aspect - 1) <= ASPECT_TOL))[0]
        for j in cand:
            if float(np.abs(ex[j][1].thumb - f.thumb).mean()) <= NEAR_MAD:
                out.append((i, ex[j][0], "near-duplicate"))
                break
    return out


def guard_frames(frames: list[Path], exclude: list[str], action: str = "refuse", near: bool = True) -> list[Path]:
    """``frames`` without any image of the ``exclude`` sets; raises :class:`DataError` (one line)
    when a frame is one of them and ``action`` is "refuse", or when no frame would be left."""
    if not exclude:
        return frames
    from flowdet.mine.frames import resolve_frames

    excluded = resolve_frames(list(exclude))
    leaks = find_leaks(frames, excluded, near)
    if not leaks:
        return frames
    where = ", ".join(exclude)
    i, img, how = leaks[0]
    example = f"e.g. {frames[i]} = {img} ({how})"
    if len(leaks) == len(frames):
        raise DataError(f"all {len(frames)} pretraining frames are images of the excluded set ({example}): "
                        "nothing is left to pretrain on — pass unlabeled frames, not the val/test images",
                        path=where)
    if action != "drop":
        raise DataError(f"{len(leaks)} of {len(frames)} pretraining frames are images of the excluded set "
                        f"({example}): pretraining on them leaks the evaluation set — remove them, or pass "
                        "--drop-excluded (data.exclude_action=drop) to pretrain on the others", path=where)
    bad = {k for k, _, _ in leaks}
    log.warn(f"{where}: left out {len(bad)} of {len(frames)} pretraining frames that are images of the "
             f"excluded set ({example})")
    return [f for k, f in enumerate(frames) if k not in bad]
