"""``flowdet stream`` on one source: the multi-source loop's reader thread
(:class:`~flowdet.runtime.stream.source_reader.SourceReader`, ``give_up``) feeding the inference loop.

- Files and folders: every frame is processed (the reader waits while ``queue_size`` frames wait).
- Live sources (camera, RTSP/HTTP): latest-frame policy — a queue of one, the stale frame is
  dropped (and counted) when a newer one arrives, so latency stays bounded when the model is
  slower than the camera. On a loss the reader reconnects with the one back-off rule
  (:func:`~flowdet.runtime.stream.source_reader.backoff_delay`); after ``retries`` consecutive
  failures the stream ends with ``stopped_by = "source_lost"``.
- The inference loop is the multi-source one (:func:`~flowdet.runtime.stream.loop.run_lanes`) with one
  source, in the calling thread: predict → jsonl line → annotated frame. The
  end-to-end latency of a frame is capture (after the read) → its outputs written.
- SIGINT (Ctrl-C) and SIGTERM (systemd, ``docker stop``) stop gracefully
  (:mod:`flowdet.runtime.stream.signals`): the video writer is released (a playable mp4) and the jsonl is
  closed with only whole lines; a second signal aborts at once. ``max_seconds`` (``--duration``)
  ends the run on time even while a stalled live source keeps reconnecting.
Torch-free.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np

from flowdet import log
from flowdet.core.detections import Detections
from flowdet.core.draw import draw_detections
from flowdet.errors import DataError, FlowdetError, MissingDependency
from flowdet.runtime.stream.loop import run_lanes
from flowdet.runtime.stream.records import (
    FILE_PROGRESS_EVERY_S,
    expected_frames,
    frame_record,
    percentiles_ms,
    progress_line,
    say_end,
    stride_note,
    strided,
)
from flowdet.runtime.stream.source_reader import SourceReader
from flowdet.runtime.stream.sources import Frame, FrameSizeWatch, FrameSource, SourceError, open_source

NAN = float("nan")  # an empty percentile in the one-source summary (its line formats numbers)
LIVE_PROGRESS_EVERY_S = 2.0  # a live source's health line (connected, fps, latency, drops)


class _Writers:
    """Annotated video + jsonl; always closed (flushed) by ``close()``."""

    def __init__(self, out: str | Path | None, jsonl: str | Path | None, fps: float, names: list[str]):
        self.out, self.fps, self.names = (Path(out) if out else None), fps, names
        self.video: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.jsonl = None
        if jsonl:
            Path(jsonl).parent.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(jsonl, "w", buffering=1)  # line-buffered: a kill leaves whole lines
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Frame, det: Detections, draw: Callable, rec: dict[str, Any] | None = None) -> np.ndarray | None:
        """``rec``: the jsonl line (with tracks, from SourceTracking.record); None → boxes only."""
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(rec if rec is not None else frame_record(frame, det)) + "\n")
        if self.out is None:
            return None
        vis = draw(frame.image, det.boxes, det.scores, det.class_ids, self.names)
        if self.video is None:
            h, w = vis.shape[:2]
            self.size = (w, h)
            fourcc = cv2.VideoWriter.fourcc(*("MJPG" if self.out.suffix.lower() == ".avi" else "mp4v"))
            self.video = cv2.VideoWriter(str(self.out), fourcc, self.fps, self.size)
            if not self.video.isOpened():
                raise FlowdetError(f"{self.out}: cannot open a video writer (use .mp4 or .avi)")
        if (vis.shape[1], vis.shape[0]) != self.size:  # folders may mix sizes; a video cannot
            vis = cv2.resize(vis, self.size)
        self.video.write(vis)
        return vis

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None


def _load_model(model: Any, threads: int | None, spinning: bool, backend: str | None = None,
                precision: str | None = None) -> Any:
    if not isinstance(model, (str, Path)):
        return model  # any Predictor object
    from flowdet.runtime.predict.predictor import load_predictor

    return load_predictor(str(model), threads=threads, backend=backend, precision=precision, spinning=spinning)


@dataclass
class _Lane:
    """The one source of :func:`run_stream`, as :func:`~flowdet.runtime.stream.loop.run_lanes` sees it:
    what each frame goes through (``on_frame``: size watch, tracker, writers, window), the progress
    callback (``on_tick``) and the running numbers (``stats``)."""

    reader: SourceReader
    o: StreamOptions
    writers: _Writers
    tracking: Any                  # a SourceTracking, or None without ``track``
    sizes: FrameSizeWatch | None   # a video's or camera's resolution change mid-stream
    names: Any                     # the model's class names (the window's drawing)
    total: int | None              # the frames a file will give, else None
    frames: int = 0
    detections: int = 0   # written (>= conf)
    invalid: int = 0      # invalid model outputs dropped
    latencies: list[float] = field(default_factory=list)
    infer: list[float] = field(default_factory=list)
    t0: float = 0.0       # set, with last_log, when the reader starts
    last_log: float = 0.0

    def stats(self, final: bool = False) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        frames, detections, reader = self.frames, self.detections, self.reader
        return {"frames": frames, "frames_read": reader.read, "dropped": reader.dropped, "reconnects": reader.reconnects,
                "detections": detections, "det_per_frame": round(detections / frames, 3) if frames else 0.0,
                "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0, "seconds": round(elapsed, 3),
                "latency_ms": percentiles_ms(self.latencies[-1000:] if not final else self.latencies, NAN),
                "infer_ms": percentiles_ms(self.infer[-1000:] if not final else self.infer, NAN)}

    def on_frame(self, ln: _Lane, item: Frame, det: Detections) -> bool:
        if self.sizes is not None:
            self.sizes.check(item.index, item.image)
        rec = None
        if self.tracking is not None:
            self.tracking.step(item, det, self.reader.source.fps)
            rec = self.tracking.record(item)
            det = self.tracking.shown
        vis = self.writers.write(item, det, draw_detections, rec)
        self.latencies.append(time.perf_counter() - item.capture)
        ln.frames += 1
        ln.detections += len(det)
        ln.invalid += det.invalid
        if self.o.show:
            cv2.imshow("flowdet", vis if vis is not None else draw_detections(
                item.image, det.boxes, det.scores, det.class_ids, self.names))
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                return False
        return True

    def on_tick(self, now: float) -> None:
        o, live = self.o, self.reader.source.live
        every = o.log_every_s if o.log_every_s is not None else (LIVE_PROGRESS_EVERY_S if live else FILE_PROGRESS_EVERY_S)
        if o.progress and now - self.last_log >= every:
            self.last_log = now
            o.progress({**self.stats(), "live": bool(live), "total": self.total})


@dataclass
class StreamOptions:
    """How :func:`run_stream` runs: the flags of one-source ``flowdet stream`` as data."""

    out: str | Path | None = None            # annotated video (.mp4 / .avi)
    jsonl: str | Path | None = None          # one json line per frame
    show: bool = False                       # a window (GUI OpenCV)
    conf: float | None = None                # boxes written from this score (output only when tracking);
                                             # None: the model's best-F1 threshold, else 0.25
    iou: float = 0.65
    tile: int | None = None                  # sliced inference: tile side (+ the full frame)
    overlap: float = 0.2
    merge: str = "nms"
    threads: int | None = None
    spinning: bool = False
    backend: str | None = None               # see flowdet.runtime.predict.predictor.load_predictor
    precision: str | None = None
    track: bool = True                       # tracks + running count in the jsonl
    tracker: Any = None                      # a TrackerConfig (its thresholds decide the count)
    gmc: bool = False                        # camera-motion compensation
    max_frames: int | None = None
    max_seconds: float | None = None         # wall-clock limit (--duration)
    retries: int = 5                         # reconnect attempts of a live source, then "source_lost"
    backoff_s: float = 0.5
    queue_size: int = 1                      # files: decoded frames that may wait
    vid_stride: int = 1                      # files: process every N-th frame (the tracker's dt is N)
    log_every_s: float | None = None         # progress every this many s [live: 2, files: FILE_PROGRESS_EVERY_S]
    progress: Callable[[dict[str, Any]], None] | None = None   # called every log_every_s with the stats


def run_stream(model: Any, source: str | int | FrameSource, options: StreamOptions | None = None,
               **changes: Any) -> dict[str, Any]:
    """Detect on every (file/folder) or the latest (live) frame of ``source``; return the summary.
    How: ``options`` (:class:`StreamOptions`) and/or its fields as keywords (``conf=0.3``; they win).

    ``model``: a .onnx/.engine/.pt path or any Predictor. ``source``: a SOURCE string (video file,
    image folder, camera index, rtsp/http URL) or a FrameSource object. ``backend`` / ``precision``:
    see :func:`flowdet.runtime.predict.predictor.load_predictor`. ``spinning``: onnxruntime
    thread spinning (off by default: it steals the decoder's core). ``progress`` is called every
    ``log_every_s`` seconds with the running stats (the summary's first ten keys, ``live`` and
    ``total``: the frames a file will give, else None; :func:`format_progress` words them).
    Summary keys: frames, frames_read, dropped, reconnects, detections, det_per_frame, fps, seconds,
    latency_ms {p50, p95}, infer_ms {p50, p95}, stopped_by ("end", "max_frames", "max_seconds",
    "interrupt", "source_lost"), signal (the one that stopped it, else None), source, live, out, jsonl
    (+ count with ``track``). ``max_seconds``: wall-clock limit.
    ``track``: a tracker per run (the multi-source path's :class:`SourceTracking`): the jsonl gets
    ``tracks`` ([id, x1, y1, x2, y2], confirmed only) and the running ``count``; ``tracker``: a
    TrackerConfig (its thresholds decide the count; ``conf`` only filters the boxes written, see
    :mod:`flowdet.runtime.stream.source_tracking`); ``gmc``: camera-motion compensation
    (:mod:`flowdet.runtime.track.gmc`)."""
    o = replace(options or StreamOptions(), **changes)
    _check_options(o)
    predictor, conf, conf_why = _predictor(model, o)
    src = open_source(source) if isinstance(source, (str, int)) else source
    tracking, det_conf = _tracking(o, bool(src.live), conf)
    if o.show:
        try:
            cv2.namedWindow("flowdet", cv2.WINDOW_NORMAL)
        except cv2.error:
            raise MissingDependency("--show needs an OpenCV build with a GUI (opencv-python, not -headless)") from None
    try:
        src.open()
    except SourceError as e:
        raise DataError(str(e)) from None

    stop, ready = threading.Event(), threading.Event()
    # Live: one slot, replaced by newer frames. Files: ``queue_size`` decoded frames wait at most.
    reader = SourceReader("stream", src, ready, stop, retries=o.retries, backoff_s=o.backoff_s,
                          file_queue=max(1, o.queue_size), give_up=True, opened=True, stride=o.vid_stride)
    total = None if src.live else strided(expected_frames(src), reader.stride, o.max_frames)
    _say_start(src, total, o.vid_stride, None if conf_why is None else f"conf {conf:.3f}: {conf_why} (--conf to choose)")
    try:  # a strided file's video plays at its real speed: fps / stride
        writers = _Writers(o.out, o.jsonl, (src.fps or 25.0) / reader.stride, list(predictor.names))
    except OSError as e:
        src.close()
        raise FlowdetError(f"{e.filename}: cannot write ({e.strerror})") from None
    sizes = FrameSizeWatch(src.description) if getattr(src, "fixed_size", True) else None
    lane = _Lane(reader, o, writers, tracking, sizes, predictor.names, total)
    stopped_by = "end"
    error: BaseException | None = None
    from flowdet.runtime.stream.signals import GracefulStop

    sig = GracefulStop(stop)
    sig.install()  # Ctrl-C / SIGTERM set ``stop``; the handlers are restored in the finally below

    lane.t0 = lane.last_log = time.perf_counter()
    reader.start()
    try:
        stopped_by = run_lanes([lane], predictor, det_conf, o.iou, stop, ready, sig, lane.on_frame,
                               on_tick=lane.on_tick, max_frames=o.max_frames, max_seconds=o.max_seconds,
                               on_infer=lane.infer.append)
        if stopped_by == "end" and reader.ended_by in ("source_lost", "error"):
            stopped_by, error = ("end", reader.exception) if reader.ended_by == "error" else ("source_lost", None)
    finally:
        stop.set()
        writers.close()
        reader.join(timeout=5.0)
        sig.restore()
        if o.show:
            cv2.destroyAllWindows()
    if error is not None:
        raise error
    if stopped_by == "end" and not src.live and reader.read == 0:
        _no_frame(src, o.jsonl)
    summary = lane.stats(final=True)
    summary.update({"stopped_by": stopped_by, "signal": sig.name, "source": src.description, "live": src.live,
                    "out": str(o.out) if o.out else None, "jsonl": str(o.jsonl) if o.jsonl else None,
                    "skipped": len(getattr(src, "skipped", ())), "invalid_outputs": lane.invalid,
                    "size_changes": sizes.changed if sizes is not None else 0, "conf": conf})
    say_end(lane.invalid, lane.frames, lane.detections, predictor, model, conf)
    if tracking is not None:
        summary["count"] = tracking.counter.total
    expected = getattr(src, "expected", None)
    if stopped_by == "end" and expected and reader.read < expected:  # as `flowdet mine` says it
        summary["warning"] = f"decoded {reader.read} of {expected} frames the header announces (truncated?)"
    if reader.stride > 1:
        summary["vid_stride"] = reader.stride
    if o.tile:
        summary["tile"] = {"size": o.tile, "overlap": o.overlap, "merge": o.merge}
    return summary


def _check_options(o: StreamOptions) -> None:
    """The values :func:`run_stream` checks before the model loads (one line each, never a traceback)."""
    from flowdet.core import validate

    validate.predict_args(o.conf, o.iou, None, o.threads)
    validate.number_in(o.vid_stride, "--vid-stride", 1, None, integer=True)
    if o.max_seconds is not None:
        validate.number_in(o.max_seconds, "--duration", 0.0, None, lo_open=True)
    for path, flag in ((o.out, "--out"), (o.jsonl, "--jsonl")):
        if path:  # before the model loads: a read-only folder is one line, not a wrong codec hint
            validate.writable_file(path, flag)


def _predictor(model: Any, o: StreamOptions) -> tuple[Any, float, str | None]:
    """(the predictor, tiled with ``tile``; the threshold boxes are written from; why, when ``conf`` was
    not given: the model's best-F1 threshold, said in the start line once the source opened)."""
    predictor = _load_model(model, o.threads, o.spinning, o.backend, o.precision)
    from flowdet.runtime.predict.predictor import default_conf

    conf, conf_why = (o.conf, None) if o.conf is not None else default_conf(predictor)
    if o.tile:
        from flowdet.runtime.predict.tiles import TiledPredictor

        predictor = TiledPredictor(predictor, o.tile, o.overlap, merge=o.merge)
    return predictor, conf, conf_why


def _tracking(o: StreamOptions, live: bool, conf: float) -> tuple[Any, float]:
    """(the source's tracker + counter or None without ``track``, the threshold the model runs at: the
    tracker's low threshold when that is below ``conf``, said in a warning)."""
    if not o.track:
        return None, conf
    from flowdet.runtime.stream.source_tracking import SourceTracking, conf_note, model_conf

    tracking = SourceTracking("", o.tracker, live=live, gmc=o.gmc, conf=conf)
    note = conf_note(conf, tracking.tracker.cfg)
    if note:
        log.warn(note)
    return tracking, model_conf(conf, tracking.tracker.cfg)


def _no_frame(src: FrameSource, jsonl: str | Path | None) -> NoReturn:
    """A file that gave no frame: what `flowdet mine` calls the same file, an error (not "frames 0" and
    an empty jsonl, which is removed)."""
    if jsonl and Path(jsonl).is_file() and Path(jsonl).stat().st_size == 0:
        Path(jsonl).unlink()
    skipped = getattr(src, "skipped", None)
    raise DataError(f"{src.description}: no frame could be decoded "
                    f"({skipped.summary() if skipped else 'unreadable, truncated or not a video'})")


def _say_start(src: FrameSource, total: int | None, stride: int, conf_line: str | None) -> None:
    """The start line: the source, what kind, how many frames will be processed, the stride, and the
    threshold when ``--conf`` was not given."""
    kind = "live" if src.live else (f"{total} frames" if total else "file")
    note = stride_note(stride, bool(src.live))
    if note and src.live:
        log.warn(note)
    parts = [kind] + ([note] if note and not src.live else []) + ([conf_line] if conf_line else [])
    log.info(f"stream {src.description}: " + " | ".join(p for p in parts if p))


def format_stats(s: dict[str, Any]) -> str:
    """One progress/summary line."""
    lat = s["latency_ms"]
    return (f"frames {s['frames']} | {s['fps']:.1f} fps | latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms"
            f" | dropped {s['dropped']} | reconnects {s['reconnects']} | det/frame {s['det_per_frame']:.2f}")


def format_progress(s: dict[str, Any]) -> str:
    """A progress line: a file's ``frame i/N | fps | ETA`` (+ det/frame), a live source's health line."""
    if s.get("live", True):
        return format_stats(s)
    return f"{progress_line(s['frames'], s.get('total'), s['fps'])} | det/frame {s['det_per_frame']:.2f}"
