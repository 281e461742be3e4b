"""What the monitor sinks receive: a counted track, an interval roll-up, the health status, and
the :class:`Sink` protocol they implement. Plain data (no numpy, no torch): every sink can send
these as they are (``asdict`` → a database row, a JSON message, metric labels)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass
class CountedItem:
    """One counted track. Times are UNIX seconds (wall clock; archived videos: ``--start-time`` +
    the time in the video). ``time``: when it was counted (confirmed); ``first_seen`` /
    ``last_seen``: its first and latest matched frame; ``frame``: the frame index at the count;
    ``video_time``: seconds into the video (files) or None (live); ``score_*``: over its matched
    frames so far; ``box``: x1, y1, x2, y2 (frame pixels) at the count; ``direction``: +1 / -1 once it
    crossed the count line, else None."""

    run_id: str
    source: str
    track_id: int
    time: float
    first_seen: float
    last_seen: float
    frame: int
    video_time: float | None
    class_id: int
    class_name: str
    score_mean: float
    score_max: float
    hits: int
    box: tuple[float, float, float, float]
    direction: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = [round(v, 2) for v in self.box]
        return d


@dataclass
class IntervalRollup:
    """Counts of one source over one closed interval. ``start``: UNIX seconds (wall clock);
    ``video_start``: seconds into the video (files) or None; ``cumulative``: the source's total
    after this interval (this run)."""

    run_id: str
    source: str
    start: float
    seconds: float
    count: int
    cumulative: int
    crossings: int | None = None
    video_start: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sink(Protocol):
    """Where monitor events go. Called from the inference loop: a method must return quickly
    (queue the work) and never raise for a server that went away — count the failure in
    :meth:`health` instead (status.json shows it under ``monitor.<kind>``).

    Optional methods, called when a sink has them: ``on_start(sources, class_names)``,
    ``on_item_update(item)`` (a counted track's later facts: ``last_seen``, score summary, line
    direction), ``on_frame_done(source, latency_s)``, ``set_stopped_by(reason)``; a sink with
    ``wants_frames = True`` gets ``status["frames_jpeg"]`` ({source: JPEG}) in ``on_health``."""

    def on_item(self, item: CountedItem) -> None: ...

    def on_interval(self, rollup: IntervalRollup) -> None: ...

    def on_health(self, status: dict[str, Any]) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
