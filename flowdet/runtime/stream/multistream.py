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
- **Health** (:mod:`flowdet.runtime.stream.health`): every ``status_every_s`` the state, fps, latency
  p50/p95, dropped, reconnects and counts of every source are written to ``status.json``
  (atomically) and each live source's line is logged;
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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet import log
from flowdet.core.detections import Detections
from flowdet.errors import FlowdetError, InputError
from flowdet.runtime.stream.health import Health, Lane
from flowdet.runtime.stream.loop import run_lanes
from flowdet.runtime.stream.records import FILE_PROGRESS_EVERY_S, percentiles_ms, say_end, stride_note

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
    count_line = m.count_line
    line = parse_count_line(count_line) if count_line is not None and not isinstance(count_line, tuple) else count_line
    if m.interval_s <= 0:
        raise InputError(f"interval must be > 0 s, got {m.interval_s}", field="--interval")
    specs = name_sources([s if isinstance(s, SourceSpec) else SourceSpec("", s) for s in sources])
    if not specs:
        raise InputError("no sources given")
    opened = [(s, s.source if not isinstance(s.source, (str, int)) else open_source(s.source)) for s in specs]
    predictor = _load_model(model, o.threads, o.spinning, o.backend, o.precision)
    from flowdet.runtime.predict.predictor import resolve_conf

    write_conf = resolve_conf(predictor, o.conf)   # said in a start line when not given
    tcfg = o.tracker or TrackerConfig()
    tcfg.validate()   # a bad threshold is one error before any source opens
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
    lanes = [_open_lane(spec, src, out, ready, stop, o, m, tcfg, line, write_conf) for spec, src in opened]
    _say_stride(lanes, o.vid_stride)
    if m.monitor is not None:
        m.monitor.start([(ln.name, ln.reader.source) for ln in lanes], list(predictor.names))
    from flowdet.runtime.stream.signals import GracefulStop

    sig = GracefulStop(stop)
    sig.install()  # Ctrl-C / SIGTERM: a clean stop; the handlers are restored in the finally below
    health = Health(lanes, out, m.status_every_s, max(m.status_every_s, FILE_PROGRESS_EVERY_S), m.stall_s,
                    o.max_frames, line is not None, m.monitor, o.progress)
    for ln in lanes:
        ln.reader.start()
    try:
        stopped_by = run_lanes(lanes, predictor, model_conf(write_conf, tcfg), o.iou, stop, ready, sig,
                               lambda ln, fr, det: _process(ln, fr, det, line, m.video, csv_out, m.monitor),
                               on_tick=health.on_tick, max_frames=o.max_frames, max_seconds=o.max_seconds,
                               max_batch=m.max_batch, on_infer=health.on_infer)
    finally:
        stop.set()
        _close_lanes(lanes, csv_out, m.monitor)
        sig.restore()
    summary = _summary(health, stopped_by, sig.name, m.video, line is not None, write_conf)
    say_end(summary["invalid_outputs"], summary["frames"], sum(ln.detections for ln in lanes), predictor, model,
            write_conf)
    atomic_write_json(out / "summary.json", summary, indent=1)
    return summary


def _open_lane(spec: SourceSpec, src: Any, out: Path, ready: threading.Event, stop: threading.Event,
               o: StreamOptions, m: MultiSourceOptions, tcfg: TrackerConfig, line: Any, write_conf: float) -> Lane:
    """A source's reader (not started yet), tracker + counter and output folder (its jsonl opened; an
    earlier run's video removed, so it never sits beside this run's jsonl)."""
    r = SourceReader(spec.name, src, ready, stop, retries=o.retries, backoff_s=o.backoff_s,
                     max_backoff_s=m.max_backoff_s, stride=o.vid_stride)
    d = out / spec.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "annotated.mp4").unlink(missing_ok=True)
    lane = Lane(spec.name, r, SourceTracking(spec.name, tcfg, m.interval_s, line, r.live, gmc=o.gmc, conf=write_conf), d)
    lane.sizes = FrameSizeWatch(spec.name) if getattr(src, "fixed_size", True) else None
    lane.jsonl = open(d / "detections.jsonl", "w", buffering=1)
    return lane


def _say_stride(lanes: list[Lane], stride: int) -> None:
    """With ``vid_stride`` > 1: one line for the files, a warning per live source (it keeps its newest frame)."""
    if stride <= 1:
        return
    if any(not ln.reader.live for ln in lanes):
        log.info(f"files: {stride_note(stride, False)}")
    for ln in lanes:
        if ln.reader.live:
            log.warn(f"{ln.name}: {stride_note(stride, True)}")


def _close_lanes(lanes: list[Lane], csv_out: CountsCSV, monitor: Any) -> None:
    """After the loop, whatever stopped it: readers joined, each source's last interval counted, its
    files closed (a playable mp4, whole jsonl lines)."""
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


def _summary(health: Health, stopped_by: str, signal: str | None, video: bool, crossings: bool,
             write_conf: float) -> dict[str, Any]:
    """The run's summary (summary.json): the final status of each source with its whole-run fps,
    latency, counts and files, and the totals."""
    final, lanes, out = health.write_status(), health.lanes, health.out
    elapsed = time.perf_counter() - health.t0
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
               "count": sum(ln.track.counter.total for ln in lanes), "batches": health.batches,
               "infer_ms": percentiles_ms(health.infer_times), "stopped_by": stopped_by, "signal": signal,
               "out_dir": str(out), "counts_csv": str(out / "counts.csv"), "status": str(out / "status.json"),
               "invalid_outputs": sum(ln.invalid for ln in lanes), "conf": write_conf}
    if crossings:
        summary["crossings"] = sum(ln.track.counter.crossings for ln in lanes)
    return summary


def _process(ln: Lane, fr: Frame, det: Detections, line: Any, video: bool, csv_out: CountsCSV,
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
            ln.video = cv2.VideoWriter(str(ln.out_dir / "annotated.mp4"), cv2.VideoWriter.fourcc(*"mp4v"),
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
