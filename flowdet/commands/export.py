"""`flowdet export` and `flowdet stream` (parsing only; the work is in flowdet.export and flowdet.runtime)."""
from __future__ import annotations

import sys

import click

from flowdet import log
from flowdet.commands import THREADS, HelpDefaults, Number, backend_options
from flowdet.errors import FlowdetError


@click.command("export")
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False),
              help="Detector checkpoint (best.pt / last.pt); with --int8 / --backend openvino also an fp32 .onnx.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "engine"]), default="onnx", show_default=True,
              help="onnx, or a TensorRT engine (needs tensorrt and an NVIDIA GPU).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output model.onnx / model.engine (--backend openvino: model.xml).")
@click.option("--img-size", default=None, help="Input size, 640 or 960x544 (W×H), multiples of 32 [default: the checkpoint's].")
@click.option("--dynamic-batch", is_flag=True, help="Symbolic batch axis (tiles of a frame run as one batch).")
@click.option("--opset", type=Number(7, 30, integer=True), default=17, show_default=True)
@click.option("--simplify", is_flag=True, help="Run onnxsim when installed (skipped with a note otherwise).")
@click.option("--half", is_flag=True, help="fp16 weights (ONNX) / fp16 kernels (engine); inputs and outputs stay float32.")
@click.option("--no-parity", is_flag=True, help="Skip the onnxruntime-vs-PyTorch parity check.")
@click.option("--parity-data", type=click.Path(exists=True), default=None,
              help="Dataset (COCO json, data.yaml), image folder or image for the parity check "
                   "[default: the checkpoint's own val, else train, images; synthetic frames when absent].")
@click.option("--no-ema", is_flag=True, help="Export the raw weights instead of the EMA weights.")
@click.option("--int8", is_flag=True, help="Static INT8 (per-channel, Conv/Gemm/MatMul; head predictions fp32), gated.")
@click.option("--calib", type=click.Path(exists=True), default=None,
              help="--int8 calibration frames: image / mined-frames folder, video, or a COCO json (train split, never val).")
@click.option("--calib-frames", type=Number(1, 100_000, integer=True), default=64, show_default=True, help="Frames spread over --calib.")
@click.option("--backend", type=click.Choice(["onnxruntime", "openvino"]), default="onnxruntime", show_default=True,
              help="Who quantizes / runs the candidate: onnxruntime (QDQ .onnx) or openvino (NNCF, IR .xml).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="--backend openvino: inference precision stored in the IR; bf16 is gated like --int8.")
@click.option("--val", type=click.Path(exists=True), default=None, help="Gate: val COCO json the candidate is scored on.")
@click.option("--images", type=click.Path(file_okay=False), default=None, help="Gate: --val's image folder [default: next to it].")
@click.option("--max-ap-drop", type=Number(0, 100), default=1.0, show_default=True, help="Gate: AP points the candidate may lose.")
@click.option("--min-speedup", type=Number(0, 1000), default=1.3, show_default=True,
              help="Gate: fp32 latency / candidate latency at least this.")
@click.option("--threads", type=THREADS, default=1, show_default=True, help="Gate: CPU threads of both models.")
@click.option("--gate-runs", type=Number(5, 100_000, integer=True), default=30, show_default=True, help="Gate: interleaved latency runs.")
@click.option("--force", is_flag=True, help="Keep the candidate even when the gate refuses it (the result is still recorded).")
def export(ckpt: str, fmt: str, out: str, img_size: str | None, dynamic_batch: bool, opset: int, simplify: bool,
           half: bool, no_parity: bool, parity_data: str | None, no_ema: bool, int8: bool, calib: str | None,
           calib_frames: int, backend: str, precision: str, val: str | None, images: str | None,
           max_ap_drop: float, min_speedup: float, threads: int, gate_runs: int, force: bool) -> None:
    """Export a checkpoint: decoded outputs (boxes xyxy, scores), metadata inside, parity-checked.

    \b
    --int8 / --backend openvino [--precision bf16]: a faster CPU model from the fp32 ONNX, measured
    against it on --val and on this CPU; refused (exit 2, one line with both numbers, nothing
    written) when AP drops more than --max-ap-drop points or the speed-up is under --min-speedup.
    flowdet export --ckpt best.pt --out m.int8.onnx --int8 --calib train.json --val val.json
    flowdet export --ckpt best.pt --out m.int8.xml --int8 --backend openvino --calib frames/ --val val.json

    Exit code 2 when the parity check fails, the gate refuses, or the engine cannot be built here."""
    from flowdet.core.size import InputSize

    edge = int8 or backend == "openvino" or precision != "fp32"
    if edge:
        from flowdet.export.edge import check_edge_args, export_edge, fp32_sibling

        check_edge_args(out, int8, backend, precision, calib, val, force)  # before the torch export
        if fmt != "onnx":
            raise click.UsageError("--int8 / --backend openvino start from --format onnx")
    if edge and ckpt.endswith(".onnx"):
        fp32_path = ckpt
    else:
        from flowdet.export.onnx_export import export as run_export

        res = run_export(ckpt, fp32_sibling(out) if edge else out, fmt=fmt,
                         img_size=InputSize.parse(img_size) if img_size else None, dynamic_batch=dynamic_batch,
                         opset=opset, simplify=simplify, half=half, parity=not no_parity, parity_data=parity_data,
                         use_ema=not no_ema, log=log.info)
        m = res.meta
        click.echo(f"wrote {res.path} ({m.model_size}, {InputSize(*m.img_size).to_flag()}, {m.precision}, "
                   f"batch {'dynamic' if m.dynamic_batch else 1}, classes {m.names}) in {res.seconds:.1f} s")
        fp32_path = str(res.path)
    if edge:
        r = export_edge(fp32_path, out, int8=int8, backend=backend, precision=precision, calib=calib,
                        calib_frames=calib_frames, val=val, images=images, max_ap_drop=max_ap_drop,
                        min_speedup=min_speedup, force=force, threads=threads, runs=gate_runs, log=log.info)
        click.echo(f"wrote {r.path}" + (f" (gate: {r.gate.line()})" if r.gate else ""))
    _export_closing(out)


def _export_closing(out: str) -> None:
    """The commands that run the exported model (fmt / backend pick no other flag: its metadata says it)."""
    from flowdet.closing import say_next

    say_next((f"flowdet predict IMAGES/ --model {out} --out runs/predict",
              f"flowdet stream VIDEO.mp4 --model {out} --out annotated.mp4 --jsonl detections.jsonl"))


def _tracker_defaults():
    from flowdet.runtime.track.track import TrackerConfig

    return TrackerConfig()


_track = HelpDefaults(_tracker_defaults)  # the flags' defaults, read from TrackerConfig itself


def _tracker_config(high: float | None, low: float | None, birth: float | None):
    """--track-high / --track-low / --track-birth → a checked TrackerConfig (None: none given)."""
    given = {k: v for k, v in (("high_thresh", high), ("low_thresh", low), ("new_track_thresh", birth)) if v is not None}
    if not given:
        return None
    from dataclasses import replace

    cfg = replace(_tracker_defaults(), **given)
    cfg.validate()
    return cfg


class SourceLost(FlowdetError):
    """A live source stayed lost after every reconnect: its own exit code, so a supervisor can
    tell "camera gone" (3) from a usage error (2) and restart accordingly."""

    exit_code = 3


@click.command("stream")
@click.option("--model", required=True, type=click.Path(exists=True, dir_okay=False), help="model.onnx (or OpenVINO .xml / .engine / .pt).")
@click.argument("sources", nargs=-1)
@click.option("--sources", "sources_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML list of sources with names (sources: [{name: bridge, url: rtsp://…}, …]).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Annotated video (.mp4 or .avi), one source.")
@click.option("--jsonl", type=click.Path(dir_okay=False), default=None, help="Detections, one json line per frame (one source).")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Track and count: per-source jsonl (with track ids), counts.csv, status.json, summary.json here "
                   "[default with several sources or --count-line: runs/stream]; a used folder becomes "
                   "<out-dir>2, <out-dir>3, … unless --exist-ok.")
@click.option("--exist-ok", is_flag=True, help="Write into --out-dir even if it holds an earlier run.")
@click.option("--video", "write_video", is_flag=True, help="With --out-dir: an annotated mp4 per source (ids, trails).")
@click.option("--count-line", default=None, help="Also count tracks crossing this line: x1,y1,x2,y2 in frame pixels.")
@click.option("--interval", type=Number(1, 86400 * 366), default=60.0, show_default=True,
              help="Counts per this many seconds in counts.csv.")
@click.option("--status-every", type=Number(0.1, 86400), default=2.0, show_default=True,
              help="Seconds between health lines / status.json refreshes.")
@click.option("--duration", type=Number(0.1, 86400 * 366), default=None,
              help="Stop after this many seconds (also a stalled live source that keeps reconnecting).")
@click.option("--show", is_flag=True, help="Show the annotated frames in a window (needs a GUI OpenCV; one source).")
@click.option("--conf", type=Number(0, 1), default=None,
              help="Score from which boxes are written (jsonl, video, det/frame) [default: the best-F1 threshold the "
                   "model stores from training's evaluation, else 0.25]. Output only: tracks and counts "
                   "use --track-high / --track-low / --track-birth (the model runs at the lower of --conf and --track-low).")
@click.option("--iou", type=Number(0, 1), default=0.65, show_default=True)
@click.option("--track-high", type=Number(0, 1), default=None,
              help="Tracker: detections from this score match any track and may start one" + _track("high_thresh") + ".")
@click.option("--track-low", type=Number(0, 1), default=None,
              help="Tracker: detections from this score up to --track-high only keep confirmed tracks alive"
                   + _track("low_thresh") + ".")
@click.option("--track-birth", type=Number(0, 1), default=None,
              help="Tracker: an unmatched detection from this score (and >= --track-high) starts a track, counted once "
                   "confirmed" + _track("new_track_thresh") + ".")
@click.option("--tile", type=Number(32, 8192, integer=True), default=None, help="Sliced inference: tile side in pixels (+ full frame; one source).")
@click.option("--overlap", type=Number(0, 0.95), default=0.2, show_default=True, help="Tile overlap fraction.")
@click.option("--merge", type=click.Choice(["nms", "wbf"]), default="nms", show_default=True, help="How tile detections merge.")
@click.option("--threads", type=THREADS, default=None, help="onnxruntime intra-op threads [default: all cores].")
@click.option("--spinning", is_flag=True, help="Let onnxruntime threads spin (off: it steals the decoder's core).")
@backend_options
@click.option("--max-frames", type=Number(1, integer=True), default=None, help="Stop after this many frames (per source).")
@click.option("--vid-stride", type=Number(1, 10_000, integer=True), default=1, show_default=True,
              help="Video files and folders: process every N-th frame (the tracker's dt is N); live sources keep "
                   "their newest frame.")
@click.option("--gmc", is_flag=True, help="Camera-motion compensation for the tracker: global motion from sparse "
              "optical flow between processed frames (3–5 ms/frame at 320 px; off: on open water it measured worse, docs/counting.md).")
@click.option("--retries", type=Number(0, 1_000_000, integer=True), default=5, show_default=True,
              help="Reconnect attempts for a lost live source (one source: then exit 3; several: then 'failed', still retried).")
@click.option("--db", default=None, metavar="PATH|URL",
              help="Also write every counted item, the interval counts and the health to this database: a SQLite "
                   "file (made; e.g. runs/count/counts.sqlite) or postgresql://user@host:5432/db. Each run appends "
                   "under a new run id. Needs the 'store' extra.")
@click.option("--start-time", default=None, metavar="TIME",
              help="Wall clock of the video files' first frame, ISO 8601 (2026-05-01T06:00:00, Z or +hh:mm; none: "
                   "local time) or UNIX seconds [default: each file's modification time]. Live sources use the clock.")
@click.option("--metrics-port", type=Number(1, 65535, integer=True), default=None,
              help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics. Needs the 'metrics' extra.")
@click.option("--mqtt", default=None, metavar="URL",
              help="Publish a JSON message per counted item and per interval to mqtt://host[:port]/topic "
                   "(QoS 1, reconnecting, bounded queue while the broker is away). Needs the 'mqtt' extra.")
def stream(model: str, sources: tuple[str, ...], sources_file: str | None, out: str | None, jsonl: str | None,
           out_dir: str | None, exist_ok: bool, write_video: bool, count_line: str | None, interval: float, status_every: float,
           duration: float | None, show: bool, conf: float | None, iou: float, track_high: float | None,
           track_low: float | None, track_birth: float | None, tile: int | None, overlap: float, merge: str,
           threads: int | None, spinning: bool, max_frames: int | None, vid_stride: int, gmc: bool, retries: int, backend: str | None,
           precision: str | None, db: str | None, start_time: str | None, metrics_port: int | None,
           mqtt: str | None) -> None:
    """Detect on SOURCES: video files, image folders, camera indexes (0) or rtsp/http URLs.

    One SOURCE (no --out-dir / --count-line): per-frame boxes and confirmed track ids (+ the running
    count) in --jsonl; prints running fps / latency / drops, then a summary; a live source lost for
    good exits 3.

    Several SOURCES (or --sources, --out-dir, --count-line): a reader thread per source, one batched
    inference loop, a tracker per source; counts of confirmed tracks per --interval (and line
    crossings) in OUT_DIR/counts.csv; per-source health (connected / reconnecting / failed / stalled,
    fps, latency, dropped) in the log and OUT_DIR/status.json. A failing source never stops the others
    and is retried until it comes back. --db, --metrics-port and --mqtt (this path too) also send
    every counted item there (docs/counting.md); `flowdet counts` and `flowdet serve` read the --db. Ctrl-C or SIGTERM (docker stop, systemd) stops cleanly: videos
    playable, summary written (exit 130 / 143); --duration ends any run on time.

    Scores, one rule: --conf decides which boxes are written; what is tracked and counted is decided by
    --track-high / --track-low / --track-birth alone (docs/counting.md)."""
    from flowdet.errors import InputError

    if not sources and not sources_file:
        raise InputError("give at least one SOURCE or --sources FILE")
    tracker = _tracker_config(track_high, track_low, track_birth)  # a bad threshold: one line, nothing opened
    monitored = bool(db) or metrics_port is not None or bool(mqtt)
    multi = len(sources) > 1 or bool(sources_file) or bool(out_dir) or count_line is not None or monitored
    if not multi:
        _stream_one(model, sources[0], out, jsonl, show, conf, iou, tile, overlap, merge, threads, spinning,
                    max_frames, retries, backend, precision, gmc, duration, tracker, vid_stride)
        return
    from flowdet.runtime.stream.multistream import (
        MultiSourceOptions,
        SourceSpec,
        format_source_table,
        load_sources_yaml,
        name_sources,
        run_multistream,
    )
    from flowdet.runtime.track.counting import parse_count_line

    line = parse_count_line(count_line)  # a malformed line is one error, before anything opens
    for flag, val in (("--out", out), ("--jsonl", jsonl), ("--show", show), ("--tile", tile)):
        if val:
            raise InputError(f"{flag} is for one source without counting; with several sources use --out-dir "
                             f"(and --video)", field=flag)
    specs = name_sources([SourceSpec("", s) for s in sources]
                         + (load_sources_yaml(sources_file) if sources_file else []))
    if start_time is not None and not monitored:
        raise InputError("--start-time stamps the --db / --mqtt rows; give one of them", field="--start-time")
    recorder = None
    if monitored:  # every sink opened (or refused, exit 2) before any source opens
        from flowdet.monitor.build import build_recorder

        recorder = build_recorder(db, start_time, metrics_port, mqtt, model=model,
                                  sources={sp.name: str(sp.source) for sp in specs})
    from flowdet.commands.detect import _fresh_out
    from flowdet.runtime.stream.stream import StreamOptions

    run_dir = _fresh_out(out_dir or "runs/stream", exist_ok)  # the one run-folder rule (flowdet.runs)
    opts = StreamOptions(conf=conf, iou=iou, threads=threads, spinning=spinning, backend=backend, precision=precision,
                         tracker=tracker, gmc=gmc, max_frames=max_frames, max_seconds=duration, retries=retries,
                         vid_stride=vid_stride)
    stopped_by = "error"
    try:
        s = run_multistream(model, specs, run_dir, opts, MultiSourceOptions(
            video=write_video, count_line=line, interval_s=interval, status_every_s=status_every, monitor=recorder))
        stopped_by = s["stopped_by"]
    finally:
        if recorder is not None:
            recorder.close(stopped_by)
    for row in format_source_table(s):
        click.echo(row)
    _multistream_closing(s, model, db)
    if s["stopped_by"] == "interrupt":
        sys.exit(_interrupt_code(s))


def _stream_one(model: str, source: str, out: str | None, jsonl: str | None, show: bool, conf: float | None, iou: float,
                tile: int | None, overlap: float, merge: str, threads: int | None, spinning: bool,
                max_frames: int | None, retries: int, backend: str | None = None,
                precision: str | None = None, gmc: bool = False, duration: float | None = None,
                tracker: object = None, vid_stride: int = 1) -> None:
    from flowdet.runtime.stream.stream import format_progress, format_stats, run_stream

    s = run_stream(model, source, out=out, jsonl=jsonl, show=show, conf=conf, iou=iou, tile=tile, overlap=overlap,
                   merge=merge, threads=threads, spinning=spinning, max_frames=max_frames, retries=retries,
                   backend=backend, precision=precision, gmc=gmc, max_seconds=duration, tracker=tracker,
                   vid_stride=vid_stride,
                   progress=lambda st: log.info(format_progress(st)))  # progress: stderr; summary: stdout
    click.echo(f"summary: {format_stats(s)} | infer p50 {s['infer_ms']['p50']:.1f} ms | {s['seconds']:.1f} s "
               f"| count {s['count']} | stopped by {s['stopped_by']}")
    _stream_closing(s, model, source)
    if s.get("skipped"):
        log.warn(f"skipped {s['skipped']} unreadable image(s) of {source}")
    if s.get("warning"):
        log.warn(f"{source}: {s['warning']}")
    if s["stopped_by"] == "source_lost":
        raise SourceLost(f"{source}: source lost, gave up after {retries} reconnect attempts")
    if s["stopped_by"] == "interrupt":
        sys.exit(_interrupt_code(s))


def _stream_closing(s: dict, model: str, source: str) -> None:
    """One source: the files written (or that none were) and the counting run that comes next."""
    from flowdet.closing import say_done

    written = [s[k] for k in ("out", "jsonl") if s[k]]
    say_done(None, written or ["nothing (--out VIDEO.mp4 keeps the annotated video, --jsonl FILE the detections)"],
             [f"flowdet stream {source} --model {model} --out-dir runs/stream --video   # counts per interval, "
              "counts.csv"])


MAX_LISTED_SOURCES = 4  # more sources: their files are named once, not per source


def _multistream_closing(s: dict, model: str, db: str | None) -> None:
    """Several sources / counting: every file under the run folder, then the commands that read the counts."""
    from flowdet.closing import say_done

    per_source = [(name, ["detections.jsonl"] + (["annotated.mp4"] if src.get("video") else []))
                  for name, src in s["sources"].items()]
    names = ["counts.csv", "status.json", "summary.json"]
    if len(per_source) <= MAX_LISTED_SOURCES:
        names += [f"{name}/{f}" for name, files in per_source for f in files]
    else:
        files = sorted({f for _, fs in per_source for f in fs})
        names.append(f"{' and '.join(files)} in each of {len(per_source)} source folders")
    nxt = ([f"flowdet counts --db {db}   # counted items per hour", f"flowdet serve --db {db}   # the dashboard"]
           if db else [f"flowdet stream SOURCES --model {model} --out-dir {s['out_dir']} --db counts.sqlite   "
                       "# keep every counted item; then: flowdet counts --db counts.sqlite"])
    say_done(s["out_dir"], names, nxt)


def _interrupt_code(summary: dict) -> int:
    """The shell's 128 + signal: 130 after Ctrl-C, 143 after SIGTERM (outputs closed cleanly either way)."""
    import signal

    name = summary.get("signal") or "SIGINT"
    return 128 + int(getattr(signal, name, signal.SIGINT))
