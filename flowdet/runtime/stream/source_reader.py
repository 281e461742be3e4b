"""Per-source input for both stream loops: the source list (flags or a YAML with names) and the one
reader thread of a source — newest-frame-only for live sources, every frame of a file, reconnects
with one back-off rule (:func:`backoff_delay`), health state. Many sources retry forever (``failed``
after ``retries``, still retried); one source (``give_up``) ends with ``source_lost`` instead.
Torch-free."""
from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowdet.errors import DataError
from flowdet.runtime.stream.sources import Frame, FrameSource, SourceError

CONNECTING, CONNECTED, RECONNECTING, FAILED, STALLED, ENDED = (
    "connecting", "connected", "reconnecting", "failed", "stalled", "ended")


@dataclass
class SourceSpec:
    name: str
    source: str | int | FrameSource


def load_sources_yaml(path: str | Path) -> list[SourceSpec]:
    """A sources file: ``sources: [{name: bridge, url: rtsp://…}, {name: pier, path: pier.mp4}, …]`` (or
    the bare list; ``source`` is accepted for ``url``/``path``)."""
    from flowdet import safe_yaml

    p = Path(path)
    doc = safe_yaml.read(p, DataError, "sources file")
    items = doc.get("sources") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise DataError("expected a non-empty list under 'sources'", path=p, field="sources")
    out = []
    for i, it in enumerate(items):
        if isinstance(it, (str, int)):
            out.append(SourceSpec("", it))
            continue
        if not isinstance(it, dict):
            raise DataError(f"entry {i}: expected a mapping with url/path (and name)", path=p, field="sources")
        src = it.get("url", it.get("path", it.get("source")))
        if src is None:
            raise DataError(f"entry {i}: no url, path or source", path=p, field="sources")
        out.append(SourceSpec(str(it.get("name", "")), src))
    return name_sources(out)


def name_sources(specs: list[SourceSpec]) -> list[SourceSpec]:
    """Fill empty names (file stem, else ``cam<i>``) and make names unique and path-safe."""
    seen: dict[str, int] = {}
    out = []
    for i, s in enumerate(specs):
        name = s.name
        if not name:
            src = s.source if isinstance(s.source, (str, int)) else getattr(s.source, "description", f"src{i}")
            p = Path(str(src))
            name = p.stem if isinstance(src, str) and p.exists() else f"cam{i}"
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or f"src{i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(SourceSpec(name, s.source))
    return out


def backoff_delay(failures: int, base_s: float, max_s: float) -> float:
    """The wait before reconnect attempt number ``failures`` (1, 2, …): base, 2 × base, 4 × base, …,
    at most ``max_s``."""
    return min(base_s * (2 ** min(max(0, failures - 1), 40)), max_s)  # min(…, 40): 2**n stays a float


class SourceReader(threading.Thread):
    """One source's thread: open (with backoff), read, hand the frame over; never raises (a crash is
    kept in ``exception`` and ends it with ``ended_by = "error"``).

    ``failures`` counts the attempts since the last good frame (a source that opens but never delivers
    still counts up). ``give_up``: after ``retries`` failed attempts end with ``ended_by =
    "source_lost"`` (one source) instead of retrying forever as ``failed`` (many sources). ``opened``:
    the caller opened the source already. Files: at most ``file_queue`` decoded frames wait, and a
    frame is read only once a slot is free (so a frame never waits in this thread's hand: that wait
    would count as latency). ``stride`` (files, ``--vid-stride``): only every ``stride``-th frame is
    decoded and handed over (``Frame.index`` still counts every frame, so the tracker's dt is
    ``stride``); a live source ignores it (it keeps its newest frame anyway)."""

    def __init__(self, name: str, source: FrameSource, ready: threading.Event, stop: threading.Event,
                 retries: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 8.0, file_queue: int = 2,
                 give_up: bool = False, opened: bool = False, stride: int = 1):
        super().__init__(name=f"flowdet-reader-{name}", daemon=True)
        self.src_name, self.source, self.ready, self.stop = name, source, ready, stop
        self.live = bool(source.live)
        self.q: queue.Queue = queue.Queue(maxsize=1 if self.live else max(1, file_queue))
        self.slots = threading.Semaphore(max(1, file_queue))   # files: free queue places, released by take()
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.give_up, self.opened = give_up, opened
        self.stride = 1 if self.live else max(1, int(stride))
        self.state = CONNECTED if opened else CONNECTING
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.ended_by: str | None = None   # "end" (file), "source_lost" (give_up), "stopped", "error"
        self.read = self.dropped = self.reconnects = self.failures = 0
        self.opens = 1 if opened else 0
        self.last_frame_t: float | None = None
        self.done = False             # no more frames will come (file ended / failed, or stopped)
        self.lock = threading.Lock()

    def _open(self) -> bool:
        try:
            self.source.open()
        except SourceError as e:
            self.error = str(e)
            return False
        except Exception as e:  # a broken backend is one source's problem, not the run's
            self.error = f"{type(e).__name__}: {e}"
            return False
        if self.opens:
            self.reconnects += 1
        self.opens += 1
        self.error = None
        self.state = CONNECTED
        return True

    def _put(self, fr: Frame) -> None:
        if self.live:
            while True:
                try:
                    self.q.put_nowait(fr)
                    break
                except queue.Full:
                    try:
                        self.q.get_nowait()
                        with self.lock:
                            self.dropped += 1
                    except queue.Empty:
                        pass
        else:
            self.q.put_nowait(fr)   # a slot was taken before the read: never full
        self.ready.set()

    def take(self) -> Frame | None:
        try:
            fr = self.q.get_nowait()
        except queue.Empty:
            return None
        if not self.live:
            self.slots.release()
        return fr

    def _failed_attempt(self) -> bool:
        """Count a failed attempt and sleep before the next; False when the reader is to end (stopped,
        or ``give_up`` and out of retries)."""
        self.failures += 1
        if self.failures > self.retries:
            self.state = FAILED
            if self.give_up:
                self.ended_by = "source_lost"
                return False
        if self.stop.wait(backoff_delay(self.failures, self.backoff_s, self.max_backoff_s)):
            self.ended_by = "stopped"
            return False
        return True

    def _skip_then_read(self) -> tuple[Any, float | None, str | None] | None:
        """The next frame to hand over: with ``stride`` > 1, the frames before it are passed (counted in
        ``read``, not decoded where the source can skip)."""
        while self.stride > 1 and self.read % self.stride:
            skip = getattr(self.source, "skip", None)
            if not (skip() if skip is not None else self.source.read() is not None):
                return None
            self.read += 1
        return self.source.read()

    def run(self) -> None:
        opened = self.opened
        try:
            while not self.stop.is_set():
                if not opened:
                    opened = self._open()
                    if not opened:
                        if not self.live:
                            self.state, self.ended_by = FAILED, "end"
                            return
                        if self.state != FAILED:
                            self.state = RECONNECTING
                        if not self._failed_attempt():
                            return
                        continue
                if not self.live and not self.slots.acquire(timeout=0.1):
                    continue
                got = self._skip_then_read()
                if got is None:
                    self.source.close()
                    opened = False
                    if not self.live:
                        if self.read == 0:  # opened, yet nothing decodes: that source's error, said
                            self.state, self.error = FAILED, "no frame could be decoded (unreadable or truncated)"
                        else:
                            self.state = ENDED
                        self.ended_by = "end"
                        return
                    self.state = RECONNECTING
                    self.error = "stream lost"
                    if not self._failed_attempt():
                        return
                    continue
                img, t, name = got
                now = time.perf_counter()
                self.failures = 0
                self._put(Frame(self.read, t, now, img, name))
                self.read += 1
                self.last_frame_t = now
            self.ended_by = "stopped"
        except BaseException as e:  # noqa: BLE001 — report, never take the run down
            self.state, self.error = FAILED, f"{type(e).__name__}: {e}"
            self.exception, self.ended_by = e, "error"
        finally:
            if self.ended_by is None:
                self.ended_by = "stopped"
            self.done = True
            self.ready.set()
            try:
                self.source.close()
            except Exception:  # noqa: BLE001
                pass
