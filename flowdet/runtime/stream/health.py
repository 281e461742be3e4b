"""The many-source run's lanes and their health: what the inference loop keeps per source
(:class:`Lane`) and :class:`Health`, which every ``status_every_s`` writes ``status.json`` (state,
fps, latency p50/p95, dropped, reconnects, counts of every source; atomically) and logs each live
source's line; a file logs its progress (``frame i/N | fps | ETA``) every ``file_every_s`` at most
and its end once. A source connected but silent for ``stall_s`` shows as ``stalled``. Torch-free."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdet import log
from flowdet.runtime.stream.records import (
    expected_frames,
    percentiles_ms,
    progress_line,
    strided,
)
from flowdet.runtime.stream.source_reader import CONNECTED, STALLED, SourceReader
from flowdet.runtime.stream.source_tracking import SourceTracking
from flowdet.runtime.stream.sources import FrameSizeWatch
from flowdet.utils import atomic_write_json


@dataclass
class Lane:
    """Everything the inference loop keeps for one source."""

    name: str
    reader: SourceReader
    track: SourceTracking
    out_dir: Path
    jsonl: Any = None
    video: Any = None
    video_size: tuple[int, int] | None = None
    frames: int = 0
    detections: int = 0
    invalid: int = 0  # invalid model outputs dropped (flowdet.core.postprocess.valid_outputs)
    sizes: FrameSizeWatch | None = None  # a video's or camera's resolution change mid-stream
    latency: deque = field(default_factory=lambda: deque(maxlen=2000))
    done_times: deque = field(default_factory=lambda: deque(maxlen=4000))
    all_latency: list = field(default_factory=list)
    first_t: float | None = None
    last_t: float | None = None

    def fps(self, window_s: float = 5.0) -> float:
        now = time.perf_counter()
        recent = [t for t in self.done_times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-6)
        return round(len(recent) / span, 2)

    def state(self, stall_s: float) -> str:
        r = self.reader
        if r.state == CONNECTED and r.live and r.last_frame_t is not None and \
                time.perf_counter() - r.last_frame_t > stall_s:
            return STALLED
        return r.state


class Health:
    """status.json and the health / progress lines of the lanes; also the batch count and inference
    times (``on_infer``) they report."""

    def __init__(self, lanes: Sequence[Lane], out: Path, status_every_s: float, file_every_s: float, stall_s: float,
                 max_frames: int | None, crossings: bool, monitor: Any = None,
                 progress: Callable[[dict[str, Any]], None] | None = None):
        self.lanes, self.out, self.status_every_s, self.stall_s = lanes, out, status_every_s, stall_s
        self.max_frames, self.crossings, self.monitor, self.progress = max_frames, crossings, monitor, progress
        self.t0 = self.last_status = self.last_file_log = time.perf_counter()
        self.file_every_s = file_every_s  # a file's progress line: at most this often
        self.said_state: dict[str, str] = {}
        self.infer_times: deque = deque(maxlen=2000)
        self.batches = 0

    def on_infer(self, seconds: float) -> None:
        self.infer_times.append(seconds)
        self.batches += 1

    def source_status(self, ln: Lane) -> dict[str, Any]:
        r = ln.reader
        age = None if r.last_frame_t is None else round(time.perf_counter() - r.last_frame_t, 2)
        return {"state": ln.state(self.stall_s), "live": r.live, "source": r.source.description, "frames": ln.frames,
                "frames_read": r.read, "fps": ln.fps(), "latency_ms": percentiles_ms(ln.latency), "dropped": r.dropped,
                "reconnects": r.reconnects, "last_frame_age_s": age, "count": ln.track.counter.total,
                **({"crossings": ln.track.counter.crossings} if self.crossings else {}),
                "error": r.error}

    def write_status(self) -> dict[str, Any]:
        st = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "uptime_s": round(time.perf_counter() - self.t0, 1),
              "infer_ms": percentiles_ms(self.infer_times),
              "sources": {ln.name: self.source_status(ln) for ln in self.lanes}}
        if self.monitor is not None:
            st["monitor"] = self.monitor.on_status(st)
        atomic_write_json(self.out / "status.json", st, indent=1)
        return st

    def file_line(self, ln: Lane, s: dict[str, Any]) -> str | None:
        """A file source's progress (frame i/N, fps, ETA) every ``file_every_s``; another state once."""
        if s["state"] == CONNECTED:
            total = strided(expected_frames(ln.reader.source), ln.reader.stride, self.max_frames)
            return f"{ln.name}: {progress_line(ln.frames, total, s['fps'])} | count {s['count']}"
        if self.said_state.get(ln.name) == s["state"]:   # ended / failed: said once
            return None
        self.said_state[ln.name] = s["state"]
        return f"{ln.name}: {s['state']} | frames {ln.frames} | count {s['count']}" + (
            f" | {s['error']}" if s["error"] else "")

    def on_tick(self, now: float) -> None:
        if now - self.last_status < self.status_every_s:
            return
        self.last_status = now
        st = self.write_status()
        files_due = now - self.last_file_log >= self.file_every_s
        if files_due:
            self.last_file_log = now
        for ln in self.lanes:
            name, s = ln.name, st["sources"][ln.name]
            if not s["live"]:
                line = self.file_line(ln, s) if files_due else None
                if line:
                    log.info(line)
                continue
            lat = s["latency_ms"]["p50"]
            log.info(f"{name}: {s['state']} | {s['fps']:.1f} fps | latency p50 "
                     f"{'-' if lat is None else f'{lat:.0f} ms'} | dropped {s['dropped']} | "
                     f"reconnects {s['reconnects']} | count {s['count']}"
                     + (f" | {s['error']}" if s["error"] and s["state"] != CONNECTED else ""))
        if self.progress:
            self.progress(st)
