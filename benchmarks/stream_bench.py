"""Stream throughput vs the model's raw throughput (goal: stream ≥ 0.9× raw).

raw    = ``OnnxPredictor.predict`` (letterbox + session + NMS) on frames already decoded in memory;
stream = ``run_stream`` on the video file: decode (reader thread) + predict + jsonl (+ annotated
         mp4 with ``--with-video``), end to end.
Both use the same model, thread count and spinning setting (off, as ``flowdet stream``); rounds
alternate raw/stream and medians are reported. On a shared box also read ``cpu_ms_per_frame``
(process CPU time per frame): the scheduler shares CPU per thread, so under contention the
two-thread stream can get more CPU than the one-thread raw loop and look faster than raw.

    python benchmarks/stream_bench.py --video ../shared/data/video/open_water_floating.mp4 \
        --threads 1,2 [--model model.onnx] [--with-video] [--json runs/bench/stream.json]
Without ``--model`` a random-init YOLOX-nano is exported at ``--img`` (throughput does not depend
on the weights).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "open_water_floating.mp4"


def _decode(video: Path, limit: int | None) -> list:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while limit is None or len(frames) < limit:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def _random_model(size: str, img: int, out: Path) -> Path:
    import torch

    from flowdet.detect.io import minimal_checkpoint
    from flowdet.export.onnx_export import export_onnx
    from flowdet.models.yolox import build_model

    ckpt = out.with_suffix(".pt")
    torch.save(minimal_checkpoint(build_model(size, 1), ["plastic"], (img, img)), ckpt)
    export_onnx(ckpt, out, parity=False, log=lambda m: None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--model", default=None, help="model.onnx (default: random-init --size at --img)")
    ap.add_argument("--size", default="nano")
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--frames", type=int, default=None, help="limit (default: the whole video)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/stream rounds (medians reported)")
    ap.add_argument("--with-video", action="store_true", help="also write the annotated mp4 in the stream run")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor
    from flowdet.runtime.stream.stream import run_stream

    video = Path(args.video)
    if not video.is_file():
        raise SystemExit(f"{video}: video not found (pass --video)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cpu cores {os.cpu_count()}, load average {load:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else _random_model(args.size, args.img, Path(tmp) / "m.onnx")
        frames = _decode(video, args.frames)
        for t in (int(x) for x in args.threads.split(",")):
            p = OnnxPredictor(model, providers="cpu", threads=t, spinning=False)
            for im in frames[:5]:
                p.predict([im])  # warm-up
            raws, streams, raw_cpu, stream_cpu = [], [], [], []
            for _ in range(args.rounds):  # alternate: load from other processes hits both alike
                c0, t0 = time.process_time(), time.perf_counter()
                for im in frames:
                    p.predict([im])
                raws.append(len(frames) / (time.perf_counter() - t0))
                raw_cpu.append(1000 * (time.process_time() - c0) / len(frames))
                c0 = time.process_time()
                streams.append(run_stream(p, str(video), jsonl=Path(tmp) / "d.jsonl", max_frames=len(frames),
                                          out=Path(tmp) / "o.mp4" if args.with_video else None))
                stream_cpu.append(1000 * (time.process_time() - c0) / max(1, streams[-1]["frames"]))
            raw_fps = statistics.median(raws)
            s = sorted(streams, key=lambda x: x["fps"])[len(streams) // 2]  # the median run
            row = {"threads": t, "frames": s["frames"], "rounds": args.rounds, "raw_fps": round(raw_fps, 2),
                   "stream_fps": s["fps"], "ratio": round(s["fps"] / raw_fps, 3), "latency_ms": s["latency_ms"],
                   "infer_ms": s["infer_ms"], "with_video": args.with_video,
                   "cpu_ms_per_frame": {"raw": round(statistics.median(raw_cpu), 2),
                                        "stream": round(statistics.median(stream_cpu), 2)}}
            rows.append(row)
            print(f"threads {t}: raw {raw_fps:6.1f} fps | stream {s['fps']:6.1f} fps | ratio {row['ratio']:.2f} | "
                  f"latency p50 {s['latency_ms']['p50']} ms p95 {s['latency_ms']['p95']} ms | frames {s['frames']}"
                  f" | cpu/frame raw {row['cpu_ms_per_frame']['raw']} ms stream {row['cpu_ms_per_frame']['stream']} ms"
                  f" | medians of {args.rounds} rounds")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"video": str(video), "model": str(args.model or f"random {args.size}"),
                                               "img": args.img, "load_average": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
