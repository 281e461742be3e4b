"""Many sources in one process: a reader thread per source, one inference loop batching the newest
frame of every source that has one, a tracker + counter per source, per-source health. Torch-free.

- **Readers** (:class:`SourceReader`): live sources keep only their newest frame (older ones are
  dropped and counted); a lost or unreachable live source is reopened with exponential backoff,
  *forever* — its state goes ``connecting → connected → reconnecting → failed`` (``failed`` after
  ``retries`` consecutive failed attempts; it is still retried every ``max_backoff_s``) and back to
  ``connected`` when it returns. A read that blocks only blocks that source's thread. Files are read
  frame by frame (nothing dropped); an unreadable file is ``failed`` and the others go on.
- **Inference** (the calling thread): each round takes at most one frame per source, runs one batched
  ``predict`` and then, per source: tracker → counter → jsonl line (with track ids) → annotated video
  (ids and short trails). A source with nothing new is skipped, never waited for.
- **Health**: every ``status_every_s`` the state, fps, latency p50/p95, dropped, reconnects and counts
  of every source are written to ``status.json`` (atomically) and each live source's line is logged;
  a source connected but silent for ``stall_s`` is shown as ``stalled``. A file logs its progress
  (``frame i/N | fps | ETA``) every ``FILE_PROGRESS_EVERY_S`` at most, and its end once.
- **Counts**: ``counts.csv`` (``time, source, count, cumulative`` [+ crossings]) gets a row per source
  per closed interval; the summary (``summary.json``) has each source's totals.

Outputs under ``out_dir``: ``<name>/detections.jsonl``, ``<name>/annotated.mp4`` (``video=True``),
``counts.csv``, ``status.json``, ``summary.json``.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet import log
from flowdet.core.detections import Detections
from flowdet.core.postprocess import invalid_message
from flowdet.errors import FlowdetError, InputError
from flowdet.runtime.stream.loop import run_lanes
from flowdet.runtime.stream.records import (
    FILE_PROGRESS_EVERY_S,
    expected_frames,
    percentiles_ms,
    progress_line,
    stride_note,
    strided,
)

# load_sources_yaml and SourceSpec are re-exported: `flowdet stream --sources` and callers import them here
from flowdet.runtime.stream.source_reader import (  # noqa: F401
    CONNECTED,
    STALLED,
    SourceReader,
    SourceSpec,
    load_sources_yaml,
    name_sources,
)
from flowdet.runtime.stream.source_tracking import SourceTracking, conf_note, model_conf
from flowdet.runtime.stream.sources import Frame, FrameSizeWatch, open_source
from flowdet.runtime.stream.stream import StreamOptions, _load_model
from flowdet.runtime.track.counting import CountsCSV, parse_count_line
from flowdet.runtime.track.track import Track, TrackerConfig
from flowdet.utils import atomic_write_json


def draw_tracks(img: np.ndarray, tracks: list[Track], line: tuple[float, float, float, float] | None,
                label: str) -> np.ndarray:
    """Boxes with track ids, short trails, the count line and a count label."""
    vis = img.copy()
    if line is not None:
        cv2.line(vis, (int(line[0]), int(line[1])), (int(line[2]), int(line[3])), (0, 255, 255), 2)
    for t in tracks:
        c = (int(37 * t.id % 255), int(17 * t.id % 255 + 80) % 255, int(97 * t.id % 255))
        x1, y1, x2, y2 = (int(round(v)) for v in t.box)
        cv2.rectangle(vis, (x1, y1), (x2, y2), c, 1)
        cv2.putText(vis, str(t.id), (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1, cv2.LINE_AA)
        if len(t.trail) > 1:
            pts = np.array(t.trail, np.int32).reshape(-1, 1, 2)
            cv2.polylines(vis, [pts], False, c, 1, cv2.LINE_AA)
    # Drawn once, white on a filled black box: readable on any water (a white stroke under black text
    # smears into a second, offset copy once the video is compressed).
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    cv2.rectangle(vis, (2, 18 - th - 4), (10 + tw, 18 + base + 2), (0, 0, 0), -1)
    cv2.putText(vis, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return vis


@dataclass
class _Lane:
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


@dataclass
class MultiSourceOptions:
    """What only the many-source run has; the settings it shares with one source are a
    :class:`~flowdet.runtime.stream.stream.StreamOptions`."""

    video: bool = False                        # an annotated mp4 per source (ids, trails)
    count_line: str | tuple | None = None      # "x1,y1,x2,y2" (frame pixels): also count tracks crossing it
    interval_s: float = 60.0                   # counts per this many seconds in counts.csv
    status_every_s: float = 2.0                # seconds between health lines / status.json refreshes
    stall_s: float = 5.0                       # a connected live source silent this long shows as "stalled"
    max_backoff_s: float = 8.0                 # the reconnect back-off's ceiling (a failed source is retried this often)
    max_batch: int | None = None               # frames per predict call at most (None: one frame per source)
    stop_event: threading.Event | None = None  # set by the caller to end the run (as Ctrl-C does)
    monitor: Any = None                        # a flowdet.monitor.recorder.Recorder (database, metrics, MQTT)


# StreamOptions fields of the one-source run only: given to run_multistream, they are refused
ONE_SOURCE_ONLY = {"out": "--out", "jsonl": "--jsonl", "show": "--show", "tile": "--tile"}


def multistream_options(options: StreamOptions | None, multi: MultiSourceOptions | None,
                        changes: dict[str, Any]) -> tuple[StreamOptions, MultiSourceOptions]:
    """``options`` and ``multi`` with ``changes`` (field names of either) applied; a one-source-only
    setting (:data:`ONE_SOURCE_ONLY`, ``track=False``) is an :class:`InputError`."""
    shared, own = {f.name for f in fields(StreamOptions)}, {f.name for f in fields(MultiSourceOptions)}
    unknown = sorted(set(changes) - shared - own)
    if unknown:
        raise TypeError(f"run_multistream() got unexpected keyword argument(s): {', '.join(unknown)}")
    o = replace(options or StreamOptions(), **{k: v for k, v in changes.items() if k in shared})
    m = replace(multi or MultiSourceOptions(), **{k: v for k, v in changes.items() if k in own})
    for name, flag in ONE_SOURCE_ONLY.items():
        if getattr(o, name):
            raise InputError(f"{flag} is for one source without counting; with several sources use --out-dir "
                             "(and --video)", field=flag)
    if not o.track:
        raise InputError("several sources are always tracked and counted (track=False is for one source)")
    return o, m


def run_multistream(model: Any, sources: list[SourceSpec] | list[str], out_dir: str | Path,
                    options: StreamOptions | None = None, multi: MultiSourceOptions | None = None,
                    **changes: Any) -> dict[str, Any]:
    """Detect, track and count on every source at once; return the summary (also ``summary.json``).
    How: ``options`` (:class:`~flowdet.runtime.stream.stream.StreamOptions`: the settings shared with
    one source), ``multi`` (:class:`MultiSourceOptions`) and/or fields of either as keywords
    (``conf=0.3, count_line="0,400,1280,400"``; they win).

    ``sources``: SOURCE strings or :class:`SourceSpec` (name + source). ``max_frames``: per source.
    ``conf``: boxes written from this score (None: the model's best-F1 threshold, else 0.25).
    ``gmc``: camera-motion compensation from the frames (:mod:`flowdet.runtime.track.gmc`).
    ``max_seconds``: wall-clock limit (live runs otherwise go until Ctrl-C or ``stop_event``).
    ``vid_stride``: files give every N-th frame (the tracker's dt is N; live sources ignore it).
    ``progress``: called with status.json's content every ``status_every_s``.
    Ends when every source is done (files ended/failed), at a limit, or on Ctrl-C / SIGTERM
    (:mod:`flowdet.runtime.stream.signals`: writers closed, summary.json written) / ``stop_event``.
    ``monitor``: an object called with each processed frame, status and source end (a
    :class:`flowdet.monitor.recorder.Recorder`: database, metrics, MQTT); its report lands in
    status.json under ``monitor``. The caller owns it (and closes it).
    """
    o, m = multistream_options(options, multi, changes)
    conf, iou, max_frames, video, monitor = o.conf, o.iou, o.max_frames, m.video, m.monitor
    count_line, status_every_s, vid_stride = m.count_line, m.status_every_s, o.vid_stride
    line = parse_count_line(count_line) if count_line is not None and not isinstance(count_line, tuple) else count_line
    if m.interval_s <= 0:
        raise InputError(f"interval must be > 0 s, got {m.interval_s}", field="--interval")
    specs = name_sources([s if isinstance(s, SourceSpec) else SourceSpec("", s) for s in sources])
    if not specs:
        raise InputError("no sources given")
    opened = [(s, s.source if not isinstance(s.source, (str, int)) else open_source(s.source)) for s in specs]
    predictor = _load_model(model, o.threads, o.spinning, o.backend, o.precision)
    from flowdet.runtime.predict.predictor import nothing_found_hint, resolve_conf

    write_conf = resolve_conf(predictor, conf)   # said in a start line when not given
    tcfg = o.tracker or TrackerConfig()
    tcfg.validate()   # a bad threshold is one error before any source opens
    det_conf = model_conf(write_conf, tcfg)
    note = conf_note(write_conf, tcfg)
    if note:
        log.warn(note)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        csv_out = CountsCSV(out / "counts.csv", line=line is not None)
    except OSError as e:
        raise FlowdetError(f"cannot write ({e.strerror})", path=out) from None

    stop = m.stop_event or threading.Event()
    ready = threading.Event()
    lanes: list[_Lane] = []
    for spec, src in opened:
        r = SourceReader(spec.name, src, ready, stop, retries=o.retries, backoff_s=o.backoff_s,
                         max_backoff_s=m.max_backoff_s, stride=vid_stride)
        d = out / spec.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "annotated.mp4").unlink(missing_ok=True)  # an earlier run's video never sits beside this run's jsonl
        lane = _Lane(spec.name, r, SourceTracking(spec.name, tcfg, m.interval_s, line, r.live, gmc=o.gmc, conf=write_conf), d)
        lane.sizes = FrameSizeWatch(spec.name) if getattr(src, "fixed_size", True) else None
        lane.jsonl = open(d / "detections.jsonl", "w", buffering=1)
        lanes.append(lane)

    if vid_stride > 1:
        if any(not ln.reader.live for ln in lanes):
            log.info(f"files: {stride_note(vid_stride, False)}")
        for ln in lanes:
            if ln.reader.live:
                log.warn(f"{ln.name}: {stride_note(vid_stride, True)}")
    if monitor is not None:
        monitor.start([(ln.name, ln.reader.source) for ln in lanes], list(predictor.names))
    from flowdet.runtime.stream.signals import GracefulStop

    sig = GracefulStop(stop)
    sig.install()  # Ctrl-C / SIGTERM: a clean stop; the handlers are restored in the finally below

    t0 = time.perf_counter()
    last_status = t0
    stopped_by = "end"
    infer_times: deque = deque(maxlen=2000)
    batches = 0

    def source_status(ln: _Lane) -> dict[str, Any]:
        r = ln.reader
        age = None if r.last_frame_t is None else round(time.perf_counter() - r.last_frame_t, 2)
        return {"state": ln.state(m.stall_s), "live": r.live, "source": r.source.description, "frames": ln.frames,
                "frames_read": r.read, "fps": ln.fps(), "latency_ms": percentiles_ms(ln.latency), "dropped": r.dropped,
                "reconnects": r.reconnects, "last_frame_age_s": age, "count": ln.track.counter.total,
                **({"crossings": ln.track.counter.crossings} if line is not None else {}),
                "error": r.error}

    def write_status() -> dict[str, Any]:
        st = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "uptime_s": round(time.perf_counter() - t0, 1),
              "infer_ms": percentiles_ms(infer_times), "sources": {ln.name: source_status(ln) for ln in lanes}}
        if monitor is not None:
            st["monitor"] = monitor.on_status(st)
        atomic_write_json(out / "status.json", st, indent=1)
        return st

    file_every_s = max(status_every_s, FILE_PROGRESS_EVERY_S)
    last_file_log = t0
    said_state: dict[str, str] = {}

    def file_line(ln: _Lane, s: dict[str, Any]) -> str | None:
        """A file source's progress (frame i/N, fps, ETA) every ``file_every_s``; another state once."""
        if s["state"] == CONNECTED:
            total = strided(expected_frames(ln.reader.source), ln.reader.stride, max_frames)
            return f"{ln.name}: {progress_line(ln.frames, total, s['fps'])} | count {s['count']}"
        if said_state.get(ln.name) == s["state"]:   # ended / failed: said once
            return None
        said_state[ln.name] = s["state"]
        return f"{ln.name}: {s['state']} | frames {ln.frames} | count {s['count']}" + (
            f" | {s['error']}" if s["error"] else "")

    def on_tick(now: float) -> None:
        nonlocal last_status, last_file_log
        if now - last_status < status_every_s:
            return
        last_status = now
        st = write_status()
        files_due = now - last_file_log >= file_every_s
        if files_due:
            last_file_log = now
        for ln in lanes:
            name, s = ln.name, st["sources"][ln.name]
            if not s["live"]:
                line = file_line(ln, s) if files_due else None
                if line:
                    log.info(line)
                continue
            lat = s["latency_ms"]["p50"]
            log.info(f"{name}: {s['state']} | {s['fps']:.1f} fps | latency p50 "
                     f"{'-' if lat is None else f'{lat:.0f} ms'} | dropped {s['dropped']} | "
                     f"reconnects {s['reconnects']} | count {s['count']}"
                     + (f" | {s['error']}" if s["error"] and s["state"] != CONNECTED else ""))
        if o.progress:
            o.progress(st)

    def on_infer(seconds: float) -> None:
        nonlocal batches
        infer_times.append(seconds)
        batches += 1

    for ln in lanes:
        ln.reader.start()
    try:
        stopped_by = run_lanes(lanes, predictor, det_conf, iou, stop, ready, sig,
                               lambda ln, fr, det: _process(ln, fr, det, line, video, csv_out, monitor),
                               on_tick=on_tick, max_frames=max_frames, max_seconds=o.max_seconds,
                               max_batch=m.max_batch, on_infer=on_infer)
    finally:
        stop.set()
        for ln in lanes:
            ln.reader.join(timeout=3.0)
        for ln in lanes:
            last = ln.track.counter.finish()
            csv_out.write(ln.track.counter.rows(last))
            if monitor is not None:
                monitor.on_end(ln.name, ln.track, last)
            if ln.jsonl is not None:
                ln.jsonl.close()
            if ln.video is not None:
                ln.video.release()
        csv_out.close()
        sig.restore()
    final = write_status()
    elapsed = time.perf_counter() - t0
    per = {}
    for ln in lanes:
        s = final["sources"][ln.name]
        span = (ln.last_t - ln.first_t) if ln.first_t is not None and ln.last_t is not None else 0.0
        s.update({"fps": round((ln.frames - 1) / span, 2) if ln.frames > 1 and span > 0 else 0.0,
                  "latency_ms": percentiles_ms(ln.all_latency), "detections": ln.detections, "invalid_outputs": ln.invalid,
                  "size_changes": ln.sizes.changed if ln.sizes is not None else 0,
                  "counts": ln.track.counter.summary(), "jsonl": str(ln.out_dir / "detections.jsonl"),
                  "video": str(ln.out_dir / "annotated.mp4") if video and ln.frames else None})
        per[ln.name] = s
    total_frames = sum(ln.frames for ln in lanes)
    summary = {"sources": per, "frames": total_frames, "seconds": round(elapsed, 3),
               "fps": round(total_frames / elapsed, 2) if elapsed > 0 else 0.0,
               "count": sum(ln.track.counter.total for ln in lanes), "batches": batches,
               "infer_ms": percentiles_ms(infer_times), "stopped_by": stopped_by, "signal": sig.name, "out_dir": str(out),
               "counts_csv": str(out / "counts.csv"), "status": str(out / "status.json"),
               "invalid_outputs": sum(ln.invalid for ln in lanes), "conf": write_conf}
    if summary["invalid_outputs"]:
        log.warn(invalid_message(summary["invalid_outputs"]))
    if total_frames and not any(ln.detections for ln in lanes):
        log.warn(f"no detections at conf ≥ {write_conf:g} in {total_frames} frames: "
                 f"{nothing_found_hint(predictor, write_conf, model if isinstance(model, (str, Path)) else None)}")
    if line is not None:
        summary["crossings"] = sum(ln.track.counter.crossings for ln in lanes)
    atomic_write_json(out / "summary.json", summary, indent=1)
    return summary


def _process(ln: _Lane, fr: Frame, det: Detections, line: Any, video: bool, csv_out: CountsCSV,
             monitor: Any = None) -> None:
    if ln.sizes is not None:
        ln.sizes.check(fr.index, fr.image)
    closed = ln.track.step(fr, det, ln.reader.source.fps)
    csv_out.write(ln.track.counter.rows(closed))
    tracks = ln.track.tracks
    ln.jsonl.write(json.dumps(ln.track.record(fr)) + "\n")
    if video:
        label = f"{ln.name}: {ln.track.counter.total}" + (f" | line {ln.track.counter.crossings}" if line is not None else "")
        vis = draw_tracks(fr.image, tracks, line, label)
        if ln.video is None:
            h, w = vis.shape[:2]
            ln.video_size = (w, h)
            ln.video = cv2.VideoWriter(str(ln.out_dir / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                       (ln.reader.source.fps or 25.0) / ln.reader.stride, ln.video_size)
        if (vis.shape[1], vis.shape[0]) != ln.video_size:
            vis = cv2.resize(vis, ln.video_size)
        ln.video.write(vis)
    now = time.perf_counter()
    lat = now - fr.capture
    ln.latency.append(lat)
    ln.all_latency.append(lat)
    ln.done_times.append(now)
    ln.first_t = now if ln.first_t is None else ln.first_t
    ln.last_t = now
    ln.frames += 1
    ln.detections += len(ln.track.shown)
    ln.invalid += det.invalid
    if monitor is not None:
        monitor.on_frame(ln.name, fr, ln.track, closed, ln.reader.source.fps, lat)


def format_source_table(summary: dict[str, Any]) -> list[str]:
    """Summary lines: one per source, then the total."""
    lines = []
    for name, s in summary["sources"].items():
        lat = s["latency_ms"]
        c = s["counts"]
        lines.append(f"{name}: {s['state']} | frames {s['frames']} | {s['fps']:.1f} fps | latency p50 "
                     f"{lat['p50'] if lat['p50'] is not None else '-'} ms p95 {lat['p95'] if lat['p95'] is not None else '-'} ms"
                     f" | dropped {s['dropped']} | reconnects {s['reconnects']} | count {c['count']}"
                     + (f" | crossings {c['crossings']}" if "crossings" in c else ""))
    lines.append(f"total: {summary['frames']} frames | {summary['fps']:.1f} fps | count {summary['count']}"
                 + (f" | crossings {summary['crossings']}" if "crossings" in summary else "")
                 + f" | {summary['seconds']:.1f} s | stopped by {summary['stopped_by']}")
    return lines
