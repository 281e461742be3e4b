"""What both stream loops write per frame and report: the jsonl record of a frame, latency
percentiles, a file's progress line and the end-of-run warnings. One builder each, so one source and many write the same
lines. Torch-free."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from flowdet import log
from flowdet.core.detections import Detections
from flowdet.core.postprocess import invalid_message
from flowdet.runtime.stream.sources import Frame
from flowdet.utils import duration

# A file's progress line comes at most this often: a 3-minute video is a dozen lines, not ~100 health
# lines (a live source keeps its health line every --status-every: its state is what changes).
FILE_PROGRESS_EVERY_S = 10.0


def percentiles_ms(seconds: Iterable[float], empty: float | None = None) -> dict[str, float | None]:
    """p50 / p95 in milliseconds (2 decimals) of durations in seconds; ``empty`` for both when there are
    none (None in status.json / summary.json; the one-source summary line formats NaN)."""
    values = list(seconds)
    if not values:
        return {"p50": empty, "p95": empty}
    a = np.asarray(values) * 1000.0
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2)}


def frame_record(fr: Frame, det: Detections) -> dict[str, Any]:
    """A frame's jsonl line: its index, time (s; None without a time stamp), file name (image folders)
    and the boxes written; the tracking loops add ``tracks``, ``count`` (and ``crossings``)."""
    rec: dict[str, Any] = {"frame": fr.index, "time": None if fr.time is None else round(fr.time, 4)}
    if fr.name:
        rec["file"] = fr.name
    rec.update({"boxes": [[round(float(v), 2) for v in b] for b in det.boxes],
                "scores": [round(float(s), 4) for s in det.scores],
                "class_ids": [int(c) for c in det.class_ids]})
    return rec


def expected_frames(source: Any) -> int | None:
    """The frames a file / folder source will give (a video header's count, a folder's images); None
    for a live source or a video that does not say."""
    n = getattr(source, "expected", None) or len(getattr(source, "files", None) or ())
    return int(n) if n else None


def stride_note(stride: int, live: bool) -> str | None:
    """The start line's words for ``--vid-stride`` (None at 1); a live source keeps its newest frame."""
    if stride <= 1:
        return None
    if live:
        return f"--vid-stride {stride} ignored: a live source keeps its newest frame"
    return f"every {ordinal(stride)} frame (--vid-stride {stride}; tracker dt {stride} frames)"


def ordinal(n: int) -> str:
    """2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def strided(total: int | None, stride: int, max_frames: int | None = None) -> int | None:
    """The frames a file source hands over: every ``stride``-th of ``total``, at most ``max_frames``."""
    if not total:
        return None
    n = -(-total // max(1, stride))
    return min(n, max_frames) if max_frames else n


def progress_line(frames: int, total: int | None, fps: float) -> str:
    """``frame 120/273 | 1.4 fps | ETA 1m50s`` (no total: ``frame 120 | 1.4 fps``)."""
    if not total:
        return f"frame {frames} | {fps:.1f} fps"
    eta = duration((total - frames) / fps) if fps > 0 else "?"
    return f"frame {frames}/{total} | {fps:.1f} fps | ETA {eta}"


def say_end(invalid: int, frames: int, detections: int, predictor: Any, model: Any, conf: float) -> None:
    """The warnings at a run's end: invalid model outputs dropped; not one box written in any frame
    (with the hint why: ``model`` is the path given, if one was)."""
    if invalid:
        log.warn(invalid_message(invalid))
    if frames and not detections:
        from flowdet.runtime.predict.predictor import nothing_found_hint

        log.warn(f"no detections at conf ≥ {conf:g} in {frames} frames: "
                 f"{nothing_found_hint(predictor, conf, model if isinstance(model, (str, Path)) else None)}")
