"""The frames export's parity check runs on: the user's ``--parity-data``, else the checkpoint's own
validation (then training) images when they are on this machine, else synthetic water-like frames.

Real frames by default because a trained model's outputs on synthetic frames are not what it will
see: on them a 30-epoch nano-d put raw box outputs where exp() decoding turns float noise into
22 px on anchors scoring 1e-6 (issue 30). Frames are spread over the set (not its first n: those
are often one camera, one minute). Every image is read through flowdet.core.imread.read_image
(flowdet.data.coco.load_image), and a name leading out of its images folder is never read
(flowdet.paths, the loader's rule).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet.core.media import IMAGE_EXTS
from flowdet.errors import DataError, FlowdetError

DEFAULT_PARITY_IMAGES = 6  # ~1 s per image pair for nano-d at 832x480 on one CPU thread


@dataclass
class ParityFrames:
    images: list[np.ndarray]
    kind: str                 # "real" | "synthetic"
    origin: str               # where they came from, for the parity line ("val.json (data.val)")
    names: list[str] = field(default_factory=list)  # one per image, for a failure line


def synthetic_images(n: int = 4, size: tuple[int, int] = (720, 1280), seed: int = 0) -> list[np.ndarray]:
    """Water-like BGR frames (smooth gradient + ripples + noise) with small bright/dark blobs: the
    fallback when no real frame is around."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for _ in range(n):
        base = np.array([90, 80, 50], np.float32) + rng.uniform(-20, 20, 3)
        ripple = 12 * np.sin(xx / rng.uniform(6, 20) + yy / rng.uniform(15, 40))
        img = base[None, None] + (ripple + yy / h * 30)[..., None] + rng.normal(0, 6, (h, w, 3))
        for _ in range(int(rng.integers(10, 30))):
            cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(3, 14))
            cv2.circle(img, (cx, cy), r, tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def spread(count: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(count)`` (first and last included)."""
    if count <= 0 or n <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, min(n, count))})


def _synthetic(n: int, why: str) -> ParityFrames:
    return ParityFrames(synthetic_images(n), "synthetic", why, [f"synthetic#{i}" for i in range(n)])


def _dataset_frames(ann: str | Path, images: str | Path | None, split: str, n: int, origin: str,
                    strict: bool, note: Callable[[str], None]) -> ParityFrames:
    """``n`` frames spread over a dataset in any format flowdet.data.formats reads. ``strict``: an
    unreadable chosen image is an error naming it (the user named these frames); else it is skipped
    with a note (the checkpoint's own data: a stale file must not block the export)."""
    from flowdet.core.imread import ImageReadError
    from flowdet.data.coco import load_image
    from flowdet.data.formats import load_dataset

    # headers only (a bad file is skipped); a file_name leading out of the images folder (absolute,
    # ../, a symlink out) is not even opened (flowdet.paths.within, in the loader)
    ds = load_dataset(ann, images or None, split, check_images=False)
    skipped = [p for p in ds.report.problems if p.field.startswith("images[")]
    if ds.report.images_skipped and skipped:
        note(f"parity: {ds.report.images_skipped} image(s) of {Path(ann).name} skipped, first: {skipped[0]}")
    records = ds.records
    out, names = [], []
    for i in spread(len(records), n):
        r = records[i]
        try:
            out.append(load_image(r))
        except ImageReadError as e:
            if strict:
                raise ImageReadError(f"{e.reason} (a --parity-data image)", r.file) from None
            note(f"parity: {r.file}: {e.reason} (skipped)")
            continue
        names.append(r.file_name)
    if not out:
        raise DataError(f"{ann}: no readable images for the parity check")
    return ParityFrames(out, "real", origin, names)


def frames_from(source: str | Path, n: int = DEFAULT_PARITY_IMAGES,
                note: Callable[[str], None] = lambda m: None) -> ParityFrames:
    """``--parity-data``: a dataset (COCO json, YOLO data.yaml: its val split), an image folder
    or one image; ``n`` images spread over it. An unreadable chosen image is an error naming it."""
    from flowdet.core.imread import ImageReadError, read_image

    p = Path(source)
    if p.is_file() and p.suffix.lower() in (".json", ".yaml", ".yml"):
        from flowdet.data.formats import has_split

        split = "val" if has_split(p, "val") else "train"  # a yaml: its val split; a json has one set
        return _dataset_frames(p, None, split, n, p.name, strict=True, note=note)
    if p.is_dir():
        from flowdet.paths import keep_inside

        # the folder is the root: a symlink in it pointing out is left out unread (one warning)
        files = keep_inside(p, sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS and q.is_file()))
        paths = [files[i] for i in spread(len(files), n)]
    else:
        paths = [p]
    images = []
    for q in paths:
        try:
            images.append(read_image(q))
        except ImageReadError as e:
            raise ImageReadError(f"{e.reason} (a --parity-data image)", q) from None
    if not images:
        raise DataError(f"{p}: no images found for the parity check")
    return ParityFrames(images, "real", p.name, [q.name for q in paths])


def _training_dir(ckpt: Path, out: Any) -> Path | None:
    """The directory ``flowdet train`` ran in, when the checkpoint still sits in its relative
    ``out`` folder (runs/x/best.pt with out "runs/x" → the folder above runs/)."""
    if not isinstance(out, str) or not out or Path(out).is_absolute():
        return None
    run_dir, parts = ckpt.resolve().parent, Path(out).parts
    if parts and run_dir.parts[-len(parts):] == parts:
        return run_dir.parents[len(parts) - 1]
    return None


def _reachable(path: str, bases: list[Path]) -> Path | None:
    p = Path(path)
    for cand in ([p] if p.is_absolute() else [b / p for b in bases]):
        if cand.exists():
            return cand
    return None


def checkpoint_frames(ckpt: str | Path, config: Any, n: int = DEFAULT_PARITY_IMAGES,
                      note: Callable[[str], None] = lambda m: None) -> ParityFrames:
    """The checkpoint's own validation images (``data.val``, or a data.yaml's val split), else its
    training images, when they are on this machine; else synthetic frames, saying why. Relative
    paths are tried from the working directory, then from where the run was trained."""
    from flowdet.detect.config import DataSection

    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), str) and data[k] for k in ("train", "val")):
        return _synthetic(n, "synthetic: the checkpoint records no training data")
    bases = [Path.cwd()] + [d for d in [_training_dir(Path(ckpt), config.get("out"))] if d is not None]
    section = DataSection(**{k: str(_reachable(v, bases) or v) if v else "" for k, v in data.items()
                             if k in ("train", "images", "val", "val_images") and isinstance(v, str)})
    candidates: list[tuple[str, str, str, str]] = []
    try:
        val = section.val_source()
        if val is not None:
            candidates.append(("data.val" if section.val else "data.train's val split", val[0], val[1], "val"))
    except FlowdetError as e:  # an unreadable data.yaml: the training images may still be there
        note(f"parity: the checkpoint's data.val: {e}")
    if section.train:
        candidates.append(("data.train", section.train, section.images, "train"))
    tried = []
    for role, ann, images, split in candidates:
        if not Path(ann).exists() or (images and not Path(images).is_dir()):
            tried.append(f"{role} {ann}")
            continue
        try:
            return _dataset_frames(ann, images or None, split, n, f"{Path(ann).name} ({role})", strict=False,
                                   note=note)
        except FlowdetError as e:
            note(f"parity: the checkpoint's {role} {ann}: {e}")
            tried.append(f"{role} {ann}")
    return _synthetic(n, f"synthetic: the checkpoint's {', '.join(tried) or 'data'} not readable here")
