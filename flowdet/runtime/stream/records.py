"""What both stream loops write per frame and report: the jsonl record of a frame and latency
percentiles. One builder each, so one source and many write the same lines. Torch-free."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from flowdet.core.detections import Detections
from flowdet.runtime.stream.sources import Frame


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
