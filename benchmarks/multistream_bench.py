"""Multi-source throughput: aggregate frames/s of ``run_multistream`` over 1, 2 and 4 file sources vs
the bare model loop (``OnnxPredictor.predict([frame])`` on frames already decoded in memory, the
same number of frames), per-source latency p50/p95, and process CPU per frame. Rounds alternate
bare/multi; medians are reported. Goal: multi ≥ 0.9× bare at 4 sources.

    python benchmarks/multistream_bench.py --video runs/synth_video/video.mp4 --frames 150 \
        [--model model.onnx] [--img 320] [--threads 2] [--json runs/bench/multistream.json]
Without ``--model`` a random-init YOLOX-nano is exported (throughput does not depend on the weights).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--img", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=150, help="frames per source")
    ap.add_argument("--sources", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from stream_bench import _decode, _random_model

    from flowdet import log
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor
    from flowdet.runtime.stream.multistream import run_multistream

    log.set_level(log.QUIET)
    load = os.getloadavg()[0]
    print(f"cpu cores {os.cpu_count()}, load average {load:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        model = Path(args.model) if args.model else _random_model("nano", args.img, tmp_p / "m.onnx")
        clip = tmp_p / "clip.mp4"
        frames = _decode(Path(args.video), args.frames)
        h, w = frames[0].shape[:2]
        vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
        for f in frames:
            vw.write(f)
        vw.release()
        p = OnnxPredictor(model, providers="cpu", threads=args.threads, spinning=False)
        for im in frames[:5]:
            p.predict([im])
        for n in (int(x) for x in args.sources.split(",")):
            srcs = []
            for i in range(n):
                dst = tmp_p / f"cam{i}.mp4"
                shutil.copy(clip, dst)
                srcs.append(str(dst))
            bare, multi, bare_cpu, multi_cpu = [], [], [], []
            for _ in range(args.rounds):
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(n):
                    for im in frames:
                        p.predict([im], conf=0.1)
                bare.append(n * len(frames) / (time.perf_counter() - t0))
                bare_cpu.append(1000 * (time.process_time() - c0) / (n * len(frames)))
                c0 = time.process_time()
                s = run_multistream(p, srcs, tmp_p / f"out{n}", status_every_s=5.0)
                multi.append(s)
                multi_cpu.append(1000 * (time.process_time() - c0) / max(1, s["frames"]))
            b = statistics.median(bare)
            s = sorted(multi, key=lambda x: x["fps"])[len(multi) // 2]
            lat = {k: v["latency_ms"] for k, v in s["sources"].items()}
            row = {"sources": n, "frames": s["frames"], "bare_fps": round(b, 2), "multi_fps": s["fps"],
                   "ratio": round(s["fps"] / b, 3), "latency_ms": lat, "batches": s["batches"],
                   "cpu_ms_per_frame": {"bare": round(statistics.median(bare_cpu), 2),
                                        "multi": round(statistics.median(multi_cpu), 2)}}
            rows.append(row)
            print(f"{n} source(s): bare {b:6.1f} fps | multi {s['fps']:6.1f} fps aggregate | ratio {row['ratio']:.2f}"
                  f" | latency p50/p95 per source {[(v['p50'], v['p95']) for v in lat.values()]} ms"
                  f" | cpu/frame bare {row['cpu_ms_per_frame']['bare']} multi {row['cpu_ms_per_frame']['multi']} ms",
                  flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"video": args.video, "img": args.img, "threads": args.threads,
                                               "load_average": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
