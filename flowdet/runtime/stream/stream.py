"""``flowdet stream``: a reader thread feeding the inference loop through a bounded queue.

- Files and folders: every frame is processed (the reader blocks when the queue is full).
- Live sources (camera, RTSP/HTTP): latest-frame policy — a queue of one, the stale frame is
  dropped (and counted) when a newer one arrives, so latency stays bounded when the model is
  slower than the camera. On a loss the reader reconnects with exponential backoff; after
  ``retries`` consecutive failures the stream ends with ``stopped_by = "source_lost"``.
- The inference loop runs in the calling thread: predict → jsonl line → annotated frame. The
  end-to-end latency of a frame is capture (after the read) → its outputs written.
- SIGINT (Ctrl-C) and SIGTERM (systemd, ``docker stop``) stop gracefully
  (:mod:`flowdet.runtime.stream.signals`): the video writer is released (a playable mp4) and the jsonl is
  closed with only whole lines; a second signal aborts at once. ``max_seconds`` (``--duration``)
  ends the run on time even while a stalled live source keeps reconnecting.
Torch-free.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet import log
from flowdet.core.detections import Detections
from flowdet.core.postprocess import invalid_message
from flowdet.errors import DataError, FlowdetError, MissingDependency
from flowdet.runtime.stream.sources import Frame, FrameSizeWatch, FrameSource, SourceError, open_source


class _End:
    """Queue sentinel with the reason the reader stopped."""

    def __init__(self, reason: str, error: BaseException | None = None):
        self.reason, self.error = reason, error


class Reader(threading.Thread):
    def __init__(self, source: FrameSource, q: queue.Queue[Frame | _End], stop: threading.Event,
                 retries: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 8.0):
        super().__init__(name="flowdet-reader", daemon=True)
        self.source, self.q, self.stop = source, q, stop
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.read = self.dropped = self.reconnects = self.failures = 0
        # Free queue slots for file/folder sources; the consumer releases one per frame taken.
        self.slots = threading.Semaphore(max(1, q.maxsize - 1))

    def _put(self, item: Frame | _End) -> None:
        if self.source.live and isinstance(item, Frame):
            # Latest-frame policy: replace whatever the consumer has not taken yet.
            while True:
                try:
                    self.q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self.q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _recover(self) -> str | None:
        """Reopen a lost live source with exponential backoff. None once reopened, else the reason
        to stop. ``self.failures`` counts attempts since the last good frame, so a source that
        opens but never delivers still gives up after ``retries``."""
        while True:
            if self.failures >= self.retries:
                return "source_lost"
            # min(…, 40): after ~1024 failures 2**n no longer fits a float (OverflowError in the reader)
            delay = min(self.backoff_s * (2 ** min(self.failures, 40)), self.max_backoff_s)
            self.failures += 1
            if self.stop.wait(delay):
                return "stopped"
            self.source.close()
            try:
                self.source.open()
            except SourceError:
                continue
            self.reconnects += 1
            return None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.source.live and not self.slots.acquire(timeout=0.1):
                    # Files: read only once a queue slot is free, so a decoded frame never waits in
                    # our hand (that wait would count as latency); decode ≪ inference, so no stall.
                    continue
                got = self.source.read()
                if got is None:
                    if not self.source.live:
                        self._put(_End("end"))
                        return
                    reason = self._recover()
                    if reason is not None:
                        self._put(_End(reason))
                        return
                    continue
                self.failures = 0
                img, t, name = got
                self._put(Frame(self.read, t, time.perf_counter(), img, name))
                self.read += 1
            self._put(_End("stopped"))
        except BaseException as e:  # surface reader crashes in the main thread, never hang it
            self._put(_End("error", e))
        finally:
            self.source.close()


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
            if rec is None:
                rec = {"frame": frame.index, "time": None if frame.time is None else round(frame.time, 4)}
                if frame.name:
                    rec["file"] = frame.name
                rec.update({"boxes": [[round(float(v), 2) for v in b] for b in det.boxes],
                            "scores": [round(float(s), 4) for s in det.scores],
                            "class_ids": [int(c) for c in det.class_ids]})
            self.jsonl.write(json.dumps(rec) + "\n")
        if self.out is None:
            return None
        vis = draw(frame.image, det.boxes, det.scores, det.class_ids, self.names)
        if self.video is None:
            h, w = vis.shape[:2]
            self.size = (w, h)
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.out.suffix.lower() == ".avi" else "mp4v"))
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


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan")}
    a = np.asarray(values) * 1000.0
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2)}


def _load_model(model: Any, threads: int | None, spinning: bool, backend: str | None = None,
                precision: str | None = None) -> Any:
    if not isinstance(model, (str, Path)):
        return model  # any Predictor object
    from flowdet.runtime.predict.predictor import load_predictor

    return load_predictor(str(model), threads=threads, backend=backend, precision=precision, spinning=spinning)


def run_stream(model: Any, source: str | int | FrameSource, out: str | Path | None = None,
               jsonl: str | Path | None = None, show: bool = False, conf: float = 0.25, iou: float = 0.65,
               tile: int | None = None, overlap: float = 0.2, merge: str = "nms", threads: int | None = None,
               spinning: bool = False, max_frames: int | None = None, retries: int = 5, backoff_s: float = 0.5,
               queue_size: int = 1, log_every_s: float = 2.0,
               progress: Callable[[dict[str, Any]], None] | None = None, backend: str | None = None,
               precision: str | None = None, track: bool = True, tracker: Any = None,
               gmc: bool = False, max_seconds: float | None = None) -> dict[str, Any]:
    """Detect on every (file/folder) or the latest (live) frame of ``source``; return the summary.

    ``model``: a .onnx/.engine/.pt path or any Predictor. ``source``: a SOURCE string (video file,
    image folder, camera index, rtsp/http URL) or a FrameSource object. ``backend`` / ``precision``:
    see :func:`flowdet.runtime.predict.predictor.load_predictor`. ``spinning``: onnxruntime
    thread spinning (off by default: it steals the decoder's core). ``progress`` is called every
    ``log_every_s`` seconds with the running stats (same keys as the summary's first ten).
    Summary keys: frames, frames_read, dropped, reconnects, detections, det_per_frame, fps, seconds,
    latency_ms {p50, p95}, infer_ms {p50, p95}, stopped_by ("end", "max_frames", "max_seconds",
    "interrupt", "source_lost"), signal (the one that stopped it, else None), source, live, out, jsonl
    (+ count with ``track``). ``max_seconds``: wall-clock limit.
    ``track``: a tracker per run (the multi-source path's :class:`SourceTracking`): the jsonl gets
    ``tracks`` ([id, x1, y1, x2, y2], confirmed only) and the running ``count``; ``tracker``: a
    TrackerConfig (its thresholds decide the count; ``conf`` only filters the boxes written, see
    :mod:`flowdet.runtime.stream.source_tracking`); ``gmc``: camera-motion compensation
    (:mod:`flowdet.runtime.track.gmc`)."""
    from flowdet.core import validate
    from flowdet.core.draw import draw_detections

    validate.predict_args(conf, iou, None, threads)
    if max_seconds is not None:
        validate.number_in(max_seconds, "--duration", 0.0, None, lo_open=True)
    for path, flag in ((out, "--out"), (jsonl, "--jsonl")):
        if path:  # before the model loads: a read-only folder is one line, not a wrong codec hint
            validate.writable_file(path, flag)
    predictor = _load_model(model, threads, spinning, backend, precision)
    if tile:
        from flowdet.runtime.predict.tiles import TiledPredictor

        predictor = TiledPredictor(predictor, tile, overlap, merge=merge)
    src = open_source(source) if isinstance(source, (str, int)) else source
    tracking = None
    det_conf = conf
    if track:
        from flowdet.runtime.stream.source_tracking import SourceTracking, conf_note, model_conf

        tracking = SourceTracking("", tracker, live=bool(src.live), gmc=gmc, conf=conf)
        det_conf = model_conf(conf, tracking.tracker.cfg)
        note = conf_note(conf, tracking.tracker.cfg)
        if note:
            log.warn(note)
    if show:
        try:
            cv2.namedWindow("flowdet", cv2.WINDOW_NORMAL)
        except cv2.error:
            raise MissingDependency("--show needs an OpenCV build with a GUI (opencv-python, not -headless)") from None
    try:
        src.open()
    except SourceError as e:
        raise DataError(str(e)) from None

    stop = threading.Event()
    # Live: one slot, replaced by newer frames. Files: ``queue_size`` frames plus room for the end marker.
    q: queue.Queue = queue.Queue(maxsize=1 if src.live else max(1, queue_size) + 1)
    reader = Reader(src, q, stop, retries=retries, backoff_s=backoff_s)
    try:
        writers = _Writers(out, jsonl, src.fps or 25.0, list(predictor.names))
    except OSError as e:
        src.close()
        raise FlowdetError(f"{e.filename}: cannot write ({e.strerror})") from None
    latencies: list[float] = []
    infer: list[float] = []
    sizes = FrameSizeWatch(src.description) if getattr(src, "fixed_size", True) else None
    frames = detections = invalid = 0
    stopped_by = "end"
    error: BaseException | None = None
    from flowdet.runtime.stream.signals import GracefulStop

    sig = GracefulStop(stop)
    sig.install()  # Ctrl-C / SIGTERM set ``stop``; the handlers are restored in the finally below

    def stats(final: bool = False) -> dict[str, Any]:
        elapsed = time.perf_counter() - t0
        return {"frames": frames, "frames_read": reader.read, "dropped": reader.dropped, "reconnects": reader.reconnects,
                "detections": detections, "det_per_frame": round(detections / frames, 3) if frames else 0.0,
                "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0, "seconds": round(elapsed, 3),
                "latency_ms": _percentiles(latencies[-1000:] if not final else latencies),
                "infer_ms": _percentiles(infer[-1000:] if not final else infer)}

    t0 = last_log = time.perf_counter()
    reader.start()
    try:
        while True:
            if max_frames is not None and frames >= max_frames:
                stopped_by = "max_frames"
                break
            if stop.is_set() and sig.count:
                stopped_by = "interrupt"
                break
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                stopped_by = "max_seconds"
                break
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if not src.live and isinstance(item, Frame):
                reader.slots.release()
            if isinstance(item, _End):
                stopped_by, error = item.reason, item.error
                if stopped_by == "stopped":
                    stopped_by = "interrupt" if sig.count else "end"
                break
            if sizes is not None:
                sizes.check(item.index, item.image)
            ti = time.perf_counter()
            det = predictor.predict([item.image], conf=det_conf, iou=iou)[0]
            infer.append(time.perf_counter() - ti)
            rec = None
            if tracking is not None:
                tracking.step(item, det, src.fps)
                rec = tracking.record(item)
                det = tracking.shown
            vis = writers.write(item, det, draw_detections, rec)
            latencies.append(time.perf_counter() - item.capture)
            frames += 1
            detections += len(det)
            invalid += det.invalid
            if show:
                cv2.imshow("flowdet", vis if vis is not None else draw_detections(
                    item.image, det.boxes, det.scores, det.class_ids, predictor.names))
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    stopped_by = "interrupt"
                    break
            if progress and time.perf_counter() - last_log >= log_every_s:
                last_log = time.perf_counter()
                progress(stats())
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        stop.set()
        writers.close()
        reader.join(timeout=5.0)
        sig.restore()
        if show:
            cv2.destroyAllWindows()
    if error is not None:
        raise error
    if stopped_by == "end" and not src.live and reader.read == 0:
        # what `flowdet mine` calls the same file: an error, not "frames 0" and an empty jsonl
        if jsonl and Path(jsonl).is_file() and Path(jsonl).stat().st_size == 0:
            Path(jsonl).unlink()
        skipped = getattr(src, "skipped", None)
        raise DataError(f"{src.description}: no frame could be decoded "
                        f"({skipped.summary() if skipped else 'unreadable, truncated or not a video'})")
    summary = stats(final=True)
    summary.update({"stopped_by": stopped_by, "signal": sig.name, "source": src.description, "live": src.live,
                    "out": str(out) if out else None, "jsonl": str(jsonl) if jsonl else None,
                    "skipped": len(getattr(src, "skipped", ())), "invalid_outputs": invalid,
                    "size_changes": sizes.changed if sizes is not None else 0})
    if invalid:
        log.warn(invalid_message(invalid))
    if tracking is not None:
        summary["count"] = tracking.counter.total
    expected = getattr(src, "expected", None)
    if stopped_by == "end" and expected and reader.read < expected:  # as `flowdet mine` says it
        summary["warning"] = f"decoded {reader.read} of {expected} frames the header announces (truncated?)"
    if tile:
        summary["tile"] = {"size": tile, "overlap": overlap, "merge": merge}
    return summary


def format_stats(s: dict[str, Any]) -> str:
    """One progress/summary line."""
    lat = s["latency_ms"]
    return (f"frames {s['frames']} | {s['fps']:.1f} fps | latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms"
            f" | dropped {s['dropped']} | reconnects {s['reconnects']} | det/frame {s['det_per_frame']:.2f}")
