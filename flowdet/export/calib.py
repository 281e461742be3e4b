"""Calibration frames for static INT8 quantization: real frames from a folder (mined frames, any
image folder, searched recursively), a COCO json (its images: use the *train* split, never val) or a
video (frames spread evenly over its length). Torch-free.

Frames are spread evenly over the source rather than taken from its start: the first seconds of
a video (or the first files of a sorted folder) are often one scene, and activation ranges from one
scene clip the others.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from flowdet.core.letterbox import preprocess_batch
from flowdet.core.media import IMAGE_EXTS, VIDEO_EXTS
from flowdet.errors import DataError, InputError
from flowdet.paths import keep_inside, within


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def _coco_paths(p: Path) -> list[Path]:
    try:
        from flowdet.files import read_text

        coco = json.loads(read_text(p))  # a FIFO is refused (DataError), not read forever
        files = [im["file_name"] for im in coco["images"]]
    except (OSError, ValueError, RecursionError, KeyError, TypeError) as e:
        raise DataError(f"not a COCO json with 'images' ({type(e).__name__})", path=p, field="--calib") from None
    root = p.parent / "images" if (p.parent / "images").is_dir() else p.parent
    # names leading out of the json's folder (absolute, ../, a symlink out) are never read
    return [f for f in (within(root, n) if isinstance(n, str) else None for n in files) if f is not None]


def _video_frames(p: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise DataError("cannot open the video", path=p, field="--calib")
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        frames = []
        if total > 0:
            for i in _spread(list(range(total)), n):
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                ok, frame = cap.read()
                if ok and frame is not None:
                    frames.append(frame)
        else:  # a stream without a frame count: the first n frames
            while len(frames) < n:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
        return frames
    finally:
        cap.release()


def load_calibration_frames(source: str | Path, n: int = 64) -> list[np.ndarray]:
    """Up to ``n`` BGR frames from ``source`` (folder, COCO json, image or video), spread evenly."""
    from flowdet.core.imread import ImageReadError, read_image

    if n < 1:
        raise InputError(f"--calib-frames {n}: must be >= 1", field="--calib-frames")
    p = Path(source)
    if not p.exists():
        raise DataError("calibration source not found", path=p, field="--calib")
    if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
        frames = _video_frames(p, n)
    else:
        if p.is_dir():
            paths = keep_inside(p, sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_EXTS and q.is_file()))
        elif p.suffix.lower() == ".json":
            paths = _coco_paths(p)
        elif p.suffix.lower() in IMAGE_EXTS:
            paths = [p]
        else:
            raise DataError("expected an image folder, a COCO json, an image or a video", path=p, field="--calib")
        frames = []
        for q in _spread(paths, n):
            try:
                frames.append(read_image(q))
            except ImageReadError:
                continue  # an unreadable file is not worth failing a calibration over; counted below
    if not frames:
        raise DataError("no readable frames for calibration", path=p, field="--calib")
    return frames


def calibration_batches(frames: list[np.ndarray], img_size: tuple[int, int]) -> list[np.ndarray]:
    """Each frame letterboxed exactly as the runtime does it, as a [1, 3, H, W] float32 batch."""
    return [preprocess_batch([f], img_size)[0] for f in frames]
