"""The multi-source loop's monitor hook: turns each source's tracker and counter into
:class:`CountedItem` / :class:`IntervalRollup` events with wall-clock times and hands them to the
sinks (database, Prometheus, MQTT).

``run_multistream(..., monitor=Recorder(...))`` calls :meth:`Recorder.start` once the sources are
known, :meth:`on_frame` after every processed frame, :meth:`on_status` with every status.json and
:meth:`on_end` per source at the end; the owner (the CLI) calls :meth:`close`. A sink that raises
is counted, never allowed to stop counting.

Wall clock: live sources stamp frames with UNIX time already; a file's frames carry seconds into the
video, so its rows get ``start_time`` + that (``--start-time``, else the file's modification time).
"""
from __future__ import annotations

import datetime as _dt
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flowdet import log
from flowdet.errors import InputError
from flowdet.monitor.events import CountedItem, IntervalRollup, Sink

FRAME_WIDTH = 640   # the dashboard's annotated frame: enough to see the debris, ~30–60 kB a JPEG


def parse_start_time(text: str | float | None) -> float | None:
    """``--start-time``: ISO 8601 (``2026-05-01T06:00:00``, a trailing ``Z`` or ``+02:00`` offset;
    without one: this machine's local time) or UNIX seconds → UNIX seconds; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        return _dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()
    except ValueError:
        raise InputError(f"expected an ISO 8601 time (2026-05-01T06:00:00[Z|+hh:mm]) or UNIX seconds, "
                         f"got {text!r}", field="--start-time") from None


def file_start_time(description: str) -> float:
    """A file's (or image folder's) modification time; now when it has none."""
    try:
        return os.stat(description).st_mtime
    except (OSError, ValueError):
        return time.time()


@dataclass
class _TrackNote:
    """What the recorder keeps per live track (by the tracker's internal uid)."""

    first_seen: float
    last_seen: float
    hits: int = 0
    score_sum: float = 0.0
    score_max: float = 0.0
    item: CountedItem | None = None   # set once counted


class _SourceState:
    def __init__(self, name: str, live: bool, offset: float):
        self.name, self.live, self.offset = name, live, offset
        self.notes: dict[int, _TrackNote] = {}
        self.counted = 0
        self.cumulative = 0


class Recorder:
    """Fan-out of one run's events to ``sinks``. ``run_id``: a fresh uuid4 per run (track ids restart
    at 1 every run; the pair never collides). ``start_time``: wall clock of the files' first frame."""

    def __init__(self, sinks: Iterable[Sink], run_id: str | None = None, start_time: float | None = None):
        self.sinks = list(sinks)
        self.wants_frames = any(getattr(s, "wants_frames", False) for s in self.sinks)
        self._latest: dict[str, tuple[Any, Any]] = {}   # source → (latest processed image, its SourceTracking)
        self.run_id = run_id or str(uuid.uuid4())
        self.start_time = start_time
        self.names: list[str] = []
        self.sources: dict[str, _SourceState] = {}
        self.sink_errors = 0
        self.host = socket.gethostname()

    # -- called by run_multistream --------------------------------------------------------------
    def start(self, sources: list[tuple[str, Any]], names: list[str]) -> None:
        """``sources``: (name, FrameSource) of every lane; ``names``: the model's class names."""
        self.names = list(names)
        for name, src in sources:
            live = bool(getattr(src, "live", False))
            offset = 0.0 if live else (self.start_time if self.start_time is not None
                                       else file_start_time(str(getattr(src, "description", ""))))
            self.sources[name] = _SourceState(name, live, offset)
        self._emit("on_start", list(self.sources), self.names)

    def on_frame(self, name: str, frame: Any, tracking: Any, closed: list[Any], fps: float | None,
                 latency_s: float) -> None:
        try:
            self._on_frame(name, frame, tracking, closed, fps, latency_s)
        except Exception as e:  # noqa: BLE001 — the hook never stops the counting it reports on
            self.sink_errors += 1
            if self.sink_errors <= 3:
                log.warn(f"monitor: {name}: {type(e).__name__}: {e}")

    def _on_frame(self, name: str, frame: Any, tracking: Any, closed: list[Any], fps: float | None,
                  latency_s: float) -> None:
        st = self.sources[name]
        t_src = frame.time if frame.time is not None else frame.index / (fps or 25.0)
        wall = st.offset + t_src
        tracker = tracking.tracker
        for t in tracker.tracks:
            if t.updated:
                n = st.notes.get(t.uid)
                if n is None:
                    n = st.notes[t.uid] = _TrackNote(wall, wall)
                n.last_seen = wall
                n.hits += 1
                n.score_sum += float(t.score)
                n.score_max = max(n.score_max, float(t.score))
        for t in tracker.newly_confirmed:
            n = st.notes.setdefault(t.uid, _TrackNote(wall, wall))
            if t.id <= 0 or n.item is not None:
                continue
            n.item = CountedItem(
                run_id=self.run_id, source=name, track_id=int(t.id), time=wall, first_seen=n.first_seen,
                last_seen=n.last_seen, frame=int(frame.index), video_time=None if st.live else round(t_src, 4),
                class_id=int(t.class_id), class_name=self._class_name(t.class_id),
                score_mean=round(n.score_sum / max(n.hits, 1), 4), score_max=round(n.score_max, 4),
                hits=n.hits, box=tuple(round(float(v), 2) for v in t.box))  # type: ignore[arg-type]
            st.counted += 1
            self._emit("on_item", n.item)
        for tid, d in getattr(tracking.counter, "new_crossings", ()):
            for n in st.notes.values():
                if n.item is not None and n.item.track_id == tid:
                    n.item.direction = int(d)
                    self._update(n)
        for t in tracker.removed:
            n = st.notes.pop(t.uid, None)
            if n is not None and n.item is not None:
                self._update(n)
        self._rollups(st, tracking.counter, closed)
        if self.wants_frames:
            self._latest[name] = (frame.image, tracking)
        self._emit("on_frame_done", name, latency_s)

    def on_status(self, status: dict[str, Any]) -> dict[str, Any]:
        """Every status.json: handed to the sinks; returns what status.json shows under ``monitor``
        (each sink's failures and drops)."""
        out: dict[str, Any] = {"run_id": self.run_id, "sink_errors": self.sink_errors}
        for s in self.sinks:
            try:
                out[getattr(s, "kind", type(s).__name__)] = s.health()
            except Exception as e:  # noqa: BLE001 — health must never stop the status
                out[getattr(s, "kind", type(s).__name__)] = {"error": f"{type(e).__name__}: {e}"}
        frames = self._annotated_frames() if self.wants_frames else {}
        self._emit("on_health", {**status, "monitor": out, "frames_jpeg": frames})
        return out

    def on_end(self, name: str, tracking: Any, closed: list[Any]) -> None:
        """A source is done: its last (partial) interval and the final facts of its live tracks."""
        st = self.sources[name]
        for n in st.notes.values():
            if n.item is not None:
                self._update(n)
        st.notes.clear()
        self._rollups(st, tracking.counter, closed)

    def close(self, stopped_by: str | None = None) -> None:
        """Flush and close every sink; ``stopped_by``: the run's end reason (the database's run row)."""
        for s in self.sinks:
            try:
                if stopped_by is not None and hasattr(s, "set_stopped_by"):
                    s.set_stopped_by(stopped_by)
                s.close()
            except Exception as e:  # noqa: BLE001
                log.warn(f"monitor: closing {type(s).__name__} failed: {type(e).__name__}: {e}")

    # -- helpers ----------------------------------------------------------------------------------
    def _annotated_frames(self) -> dict[str, bytes]:
        """The latest processed frame of each source with its tracks and count, as a JPEG of at most
        ``FRAME_WIDTH`` pixels (drawn only here, once per status, never per frame)."""
        import cv2

        from flowdet.runtime.stream.multistream import draw_tracks

        out = {}
        for name, (img, tracking) in self._latest.items():
            c = tracking.counter
            vis = draw_tracks(img, tracking.tracks, c.line, f"{name}: {c.total}")
            if vis.shape[1] > FRAME_WIDTH:
                vis = cv2.resize(vis, (FRAME_WIDTH, round(vis.shape[0] * FRAME_WIDTH / vis.shape[1])),
                                 interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", vis, [cv2.IMWRITE_JPEG_QUALITY, 70])
            if ok:
                out[name] = buf.tobytes()
        self._latest.clear()   # a source that sends nothing new keeps its last stored frame
        return out

    def _class_name(self, cid: int) -> str:
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    def _update(self, n: _TrackNote) -> None:
        item = n.item
        assert item is not None
        item.last_seen = n.last_seen
        item.hits = n.hits
        item.score_mean = round(n.score_sum / max(n.hits, 1), 4)
        item.score_max = round(n.score_max, 4)
        self._emit("on_item_update", item)

    def _rollups(self, st: _SourceState, counter: Any, closed: list[Any]) -> None:
        for iv in closed:
            st.cumulative += iv.count
            self._emit("on_interval", IntervalRollup(
                run_id=self.run_id, source=st.name, start=st.offset + iv.start, seconds=counter.interval_s,
                count=iv.count, cumulative=st.cumulative,
                crossings=iv.crossings if counter.line is not None else None,
                video_start=None if st.live else iv.start))

    def _emit(self, method: str, *args: Any) -> None:
        for s in self.sinks:
            fn = getattr(s, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 — a sink's bug is counted, counting goes on
                self.sink_errors += 1
                if self.sink_errors <= 3:
                    log.warn(f"monitor: {type(s).__name__}.{method} failed: {type(e).__name__}: {e}")

