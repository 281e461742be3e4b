"""Per-source tracking glue shared by ``flowdet stream`` (one source) and the multi-source loop:
frame gap → tracker (with optional camera-motion compensation) → counter → the jsonl record.
Torch-free.

One rule for the scores (``--conf`` and the tracker's ``--track-*``): the model runs at
:func:`model_conf` (``conf`` or the tracker's low threshold, the lower), the tracker sees every box
it returns and applies its own thresholds, and ``conf`` only filters what is *written* (the jsonl's
boxes, the annotated video, the detections count). Counts never depend on ``conf``."""
from __future__ import annotations

from typing import Any

from flowdet.core.detections import Detections
from flowdet.runtime.stream.records import frame_record
from flowdet.runtime.stream.sources import Frame
from flowdet.runtime.track.counting import Counter, Interval
from flowdet.runtime.track.gmc import CameraMotion, GMCConfig
from flowdet.runtime.track.track import Track, TrackerConfig
from flowdet.runtime.track.tracker import ByteTracker


def model_conf(conf: float, tracker: TrackerConfig) -> float:
    """The score threshold the model runs at when tracking: the tracker's second stage wants the boxes
    between its low and high thresholds even when ``conf`` (what is written) is higher."""
    return min(conf, tracker.low_thresh)


def conf_note(conf: float, tracker: TrackerConfig) -> str | None:
    """A line for the user who lowers ``--conf`` to count a weak model's objects: it does not do that."""
    if conf >= tracker.low_thresh:
        return None
    return (f"--conf {conf:g} only filters the boxes written; the counts use the tracker's thresholds: tracks "
            f"start at score >= {max(tracker.new_track_thresh, tracker.high_thresh):g} (--track-birth / --track-high) "
            f"and are kept at >= {tracker.low_thresh:g} (--track-low); lower those to count weaker detections")


class SourceTracking:
    """Tracker + counter (+ :class:`CameraMotion` when ``gmc``) of one source; ``conf``: the score from
    which a box is written (:attr:`shown`), never used by the tracker.

    ``dt`` for the Kalman predict is the source-frame gap since the previous processed frame
    (``Frame.index`` counts every frame the reader got, so frames dropped by a live source's
    newest-frame policy are counted as skipped)."""

    def __init__(self, name: str, tracker: TrackerConfig | None = None, interval_s: float = 60.0,
                 line: tuple[float, float, float, float] | None = None, live: bool = False,
                 gmc: bool | GMCConfig = False, conf: float = 0.25):
        self.tracker = ByteTracker(tracker)   # its own copy of the config
        self.counter = Counter(source=name, interval_s=interval_s, line=line, live=live)
        self.gmc = CameraMotion(gmc if isinstance(gmc, GMCConfig) else None) if gmc else None
        self.conf = conf
        self.last_index: int | None = None
        self.tracks: list[Track] = []
        self.shown = Detections.empty()   # the latest frame's detections >= conf: what is written

    def step(self, fr: Frame, det: Detections, fps: float | None = None) -> list[Interval]:
        """Track and count one processed frame (``det``: every box the model returned at
        :func:`model_conf`); return the count intervals it closed. ``fps``: the source's, for frames
        without a time stamp (default 25)."""
        dt = fr.index - self.last_index if self.last_index is not None and fr.index > self.last_index else 1
        self.last_index = fr.index
        warp = self.gmc.update(fr.image) if self.gmc is not None else None
        self.tracks = self.tracker.update(det, dt=dt, warp=warp, frame_size=(fr.image.shape[1], fr.image.shape[0]))
        self.shown = det[det.scores >= self.conf]
        t = fr.time if fr.time is not None else fr.index / (fps or 25.0)
        return self.counter.update(t, self.tracker.newly_confirmed, self.tracks)

    def record(self, fr: Frame) -> dict[str, Any]:
        """The jsonl line of the frame just stepped: its boxes ≥ ``conf``, the confirmed tracks
        ``[id, x1, y1, x2, y2]``, the running count (and crossings with a line)."""
        rec = frame_record(fr, self.shown)
        rec.update({"tracks": [[t.id] + [round(float(v), 2) for v in t.box] for t in self.tracks],
                    "count": self.counter.total})
        if self.counter.line is not None:
            rec["crossings"] = self.counter.crossings
        return rec
