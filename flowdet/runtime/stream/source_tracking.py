"""Per-source tracking glue shared by ``flowdet stream`` (one source) and the multi-source loop:
frame gap → tracker (with optional camera-motion compensation) → counter → the jsonl record.
Torch-free."""
from __future__ import annotations

from typing import Any

from flowdet.core.detections import Detections
from flowdet.runtime.stream.sources import Frame
from flowdet.runtime.track.counting import Counter, Interval
from flowdet.runtime.track.gmc import CameraMotion, GMCConfig
from flowdet.runtime.track.track import Track, TrackerConfig
from flowdet.runtime.track.tracker import ByteTracker


class SourceTracking:
    """Tracker + counter (+ :class:`CameraMotion` when ``gmc``) of one source.

    ``dt`` for the Kalman predict is the source-frame gap since the previous processed frame
    (``Frame.index`` counts every frame the reader got, so frames dropped by a live source's
    newest-frame policy are counted as skipped)."""

    def __init__(self, name: str, tracker: TrackerConfig | None = None, interval_s: float = 60.0,
                 line: tuple[float, float, float, float] | None = None, live: bool = False,
                 gmc: bool | GMCConfig = False):
        self.tracker = ByteTracker(TrackerConfig(**vars(tracker)) if tracker else None)
        self.counter = Counter(source=name, interval_s=interval_s, line=line, live=live)
        self.gmc = CameraMotion(gmc if isinstance(gmc, GMCConfig) else None) if gmc else None
        self.last_index: int | None = None
        self.tracks: list[Track] = []

    def step(self, fr: Frame, det: Detections, fps: float | None = None) -> list[Interval]:
        """Track and count one processed frame; return the count intervals it closed. ``fps``: the
        source's, for frames without a time stamp (default 25)."""
        dt = fr.index - self.last_index if self.last_index is not None and fr.index > self.last_index else 1
        self.last_index = fr.index
        warp = self.gmc.update(fr.image) if self.gmc is not None else None
        self.tracks = self.tracker.update(det.boxes, det.scores, det.class_ids, dt=dt, warp=warp,
                                          frame_size=(fr.image.shape[1], fr.image.shape[0]))
        t = fr.time if fr.time is not None else fr.index / (fps or 25.0)
        return self.counter.update(t, self.tracker.newly_confirmed, self.tracks)

    def record(self, fr: Frame, det: Detections, conf: float) -> dict[str, Any]:
        """The jsonl line of this frame: boxes ≥ ``conf``, confirmed tracks ``[id, x1, y1, x2, y2]``,
        the running count (and crossings with a line)."""
        keep = det.scores >= conf
        rec: dict[str, Any] = {"frame": fr.index, "time": None if fr.time is None else round(fr.time, 4)}
        if fr.name:
            rec["file"] = fr.name
        rec.update({"boxes": [[round(float(v), 2) for v in b] for b in det.boxes[keep]],
                    "scores": [round(float(s), 4) for s in det.scores[keep]],
                    "class_ids": [int(c) for c in det.class_ids[keep]],
                    "tracks": [[t.id] + [round(float(v), 2) for v in t.box] for t in self.tracks],
                    "count": self.counter.total})
        if self.counter.line is not None:
            rec["crossings"] = self.counter.crossings
        return rec
