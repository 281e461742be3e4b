"""The one inference loop of ``flowdet stream``, for one source or many: each round takes the newest
frame of every source that has one (a source with nothing new is skipped, never waited for), runs one
batched ``predict`` and hands each (source, frame, detections) to the caller's ``on_frame``.
:func:`flowdet.runtime.stream.stream.run_stream` is a run of it with one source,
:func:`flowdet.runtime.stream.multistream.run_multistream` one with many. Torch-free."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from flowdet.core.detections import Detections
from flowdet.runtime.stream.signals import GracefulStop
from flowdet.runtime.stream.source_reader import SourceReader
from flowdet.runtime.stream.sources import Frame


class Lane(Protocol):
    """What the loop needs of a source: its reader and the frames processed so far (``on_frame`` counts)."""

    reader: SourceReader
    frames: int


def run_lanes(lanes: Sequence[Any], predictor: Any, conf: float, iou: float, stop: threading.Event,
              ready: threading.Event, sig: GracefulStop, on_frame: Callable[[Any, Frame, Detections], bool | None],
              on_tick: Callable[[float], None] | None = None, max_frames: int | None = None,
              max_seconds: float | None = None, max_batch: int | None = None,
              on_infer: Callable[[float], None] | None = None) -> str:
    """Run until a stop; return why: ``interrupt`` (a signal, Ctrl-C, or ``on_frame`` returned False),
    ``stopped`` (``stop`` set by the caller), ``max_seconds``, ``max_frames`` (every source reached
    it) or ``end`` (every reader done and drained). ``on_tick(now)`` runs once a round (status,
    progress); ``on_infer(seconds)`` after each round's predict. The readers
    must have been started; the caller closes everything (its ``finally``)."""
    t0 = time.perf_counter()

    def at_limit(ln: Any) -> bool:
        return max_frames is not None and ln.frames >= max_frames

    try:
        while True:
            if sig.count:
                return "interrupt"
            if stop.is_set():
                return "stopped"
            now = time.perf_counter()
            if max_seconds is not None and now - t0 >= max_seconds:
                return "max_seconds"
            if on_tick is not None:
                on_tick(now)
            ready.clear()
            batch = [(ln, fr) for ln in lanes if not at_limit(ln) and (fr := ln.reader.take()) is not None]
            if not batch:
                if all((ln.reader.done and ln.reader.q.empty()) or at_limit(ln) for ln in lanes):
                    if stop.is_set():   # the readers ended because of it (a live one only ends so)
                        return "interrupt" if sig.count else "stopped"
                    return "max_frames" if all(at_limit(ln) for ln in lanes) else "end"
                ready.wait(0.05)
                continue
            ti = time.perf_counter()
            dets: list[Detections] = []
            step = max_batch or len(batch)
            for i in range(0, len(batch), step):
                dets += predictor.predict([fr.image for _, fr in batch[i:i + step]], conf=conf, iou=iou)
            if on_infer is not None:
                on_infer(time.perf_counter() - ti)
            for (ln, fr), det in zip(batch, dets):
                if on_frame(ln, fr, det) is False:
                    return "interrupt"
    except KeyboardInterrupt:
        return "interrupt"
