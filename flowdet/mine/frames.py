"""Frame lists and the frame cache: what ``pretrain --frames`` and ``detect --unlabeled`` read (torch-free).

``--frames`` accepts, repeatable: a folder (its ``manifest.jsonl`` when present, else every image
below it), a ``manifest.jsonl``, a ``.txt`` list (one path a line, relative to the list), a COCO
``.json`` (its images only — labels are ignored), or a single image.

Every frame is resized so its long side is ``frame_size`` (the detector's letterbox scale, so crop
sizes are in detector pixels). The torch Datasets over a :class:`FrameStore` are pretraining's
(``flowdet/pretrain/datasets.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet import log
from flowdet.core.defaults import PAD_VALUE
from flowdet.core.media import IMAGE_EXTS
from flowdet.errors import DataError
from flowdet.mine.miner import MANIFEST, read_manifest
from flowdet.paths import file_root, keep_inside


def resolve_frames(sources: list[str]) -> list[Path]:
    """Expand ``--frames`` arguments into a sorted-by-source, de-duplicated list of image paths."""
    out: list[Path] = []
    for raw in sources:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: frames source not found (folder, manifest.jsonl, .txt or COCO .json)")
        if p.is_dir():
            if (p / MANIFEST).is_file():
                out += [Path(r["path"]) for r in read_manifest(p / MANIFEST)]
            else:
                found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
                out += keep_inside(p, found)
        elif p.name.endswith(".jsonl"):
            out += [Path(r["path"]) for r in read_manifest(p)]
        elif p.suffix.lower() == ".txt":
            from flowdet import files

            lines = [ln.strip() for ln in files.read_text(p).splitlines() if ln.strip() and not ln.startswith("#")]
            out += [f.resolve() for f in keep_inside(file_root(p)[0], [p.parent / ln for ln in lines], p)]
        elif p.suffix.lower() == ".json":
            out += _coco_images(p)
        elif p.suffix.lower() in IMAGE_EXTS:
            out.append(p)
        else:
            raise DataError(f"{p}: unsupported frames source (folder, manifest.jsonl, .txt, .json, image)")
    seen, uniq = set(), []
    for f in (p.resolve() for p in out):  # the same file reached twice (a list and a folder) counts once
        if f not in seen:
            seen.add(f)
            uniq.append(f)
    if not uniq:
        raise DataError(f"{', '.join(sources)}: no frames found")
    missing = [f for f in uniq if not f.exists()]
    if missing:
        raise DataError(f"{missing[0]}: frame listed but missing ({len(missing)} missing in all)")
    from flowdet.core.imread import ImageReadError, SkipLog, image_size

    skipped, usable = SkipLog("frame"), []
    for f in uniq:  # header check (no decoding): FIFOs, truncated files, over the pixel cap
        try:
            image_size(f)
            usable.append(f)
        except ImageReadError as e:
            skipped.add(f, e.reason)
    if skipped:
        log.warn(skipped.summary())
    if not usable:
        raise DataError(f"no readable frames ({skipped.summary()})", path=", ".join(sources))
    return usable


def _coco_images(path: Path) -> list[Path]:
    from flowdet.data.coco import default_images_dir, image_entries, read_json

    data = read_json(path)
    images = image_entries(data, path)  # entries that are not image objects: one line, not a traceback
    root = default_images_dir(path, data)
    names = [im["file_name"] for im in images if "#" not in im["file_name"]]  # video frames: not frames here
    return keep_inside(root, [root / n for n in names], path)


def resize_long(img: np.ndarray, frame_size: int) -> tuple[np.ndarray, float]:
    """(``img`` resized so its long side is ``frame_size``, the scale factor used)."""
    h, w = img.shape[:2]
    r = frame_size / max(h, w)
    if r != 1.0:
        interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))), interpolation=interp)
    return img, r


def _decode(item: Any) -> np.ndarray:
    if isinstance(item, Path):
        from flowdet.core.imread import read_image

        return read_image(item)
    from flowdet.data.coco import load_image  # an ImageRecord (also video-frame records)

    return load_image(item)


class FrameStore:
    """Resized frames by index (image paths or COCO ImageRecords), decoded once and kept in memory
    when ``cache`` (per process; DataLoader workers are persistent so their caches survive epochs).
    ``frame_size`` None keeps each frame's own size (the caller letterboxes it once)."""

    def __init__(self, items: list[Any], frame_size: int | None, cache: bool = True):
        self.items, self.frame_size, self.cache = list(items), frame_size, cache
        self._mem: dict[int, tuple[np.ndarray, float]] = {}
        self.bad: set[int] = set()  # indices this process could not read (a grey frame stood in)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> tuple[np.ndarray, float]:
        if i in self._mem:
            return self._mem[i]
        from flowdet.core.imread import ImageReadError

        try:
            img = _decode(self.items[i])
        except ImageReadError as e:  # one bad file must not end the run: a grey frame stands in
            if i not in self.bad:
                log.warn(f"{e} (skipped: a grey frame without boxes stands in)", all_ranks=True)
            self.bad.add(i)
            side = self.frame_size or 640
            img = np.full((side * 9 // 16, side, 3), PAD_VALUE, np.uint8)
        item = resize_long(img, self.frame_size) if self.frame_size else (img, 1.0)
        if self.cache:
            self._mem[i] = item
        return item
