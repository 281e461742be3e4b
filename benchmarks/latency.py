"""Per-frame latency, batch 1, 640×640: PyTorch eager vs onnxruntime CPU, for nano / tiny / s.

Random-init weights (latency does not depend on them), BN fused in both backends (as exported).
Each row: median (and p90) wall time and median process CPU time of ``--runs`` timed calls after
``--warmup`` untimed ones; model only (the preprocessed tensor in, decoded boxes/scores out — no
letterbox, no NMS), plus one end-to-end row per size for onnxruntime (``OnnxPredictor.predict`` on a 1920×1080 frame:
letterbox + session + NMS). A YOLOv8n row is added when ultralytics is installed (bench extra).

    python benchmarks/latency.py --sizes nano,tiny,s --threads 1,2 --runs 20 --json runs/bench/latency.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _time(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    ts, cpu = [], []
    for _ in range(runs):
        c, t = time.process_time(), time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    # cpu_ms: CPU time of this process per call. On a shared box it is the steadier number: with
    # 1 thread (and no spinning) it estimates the wall latency on an idle core.
    return {"median_ms": round(statistics.median(ts), 2), "p90_ms": round(float(np.percentile(ts, 90)), 2),
            "cpu_ms": round(statistics.median(cpu), 2), "runs": runs}


def _export(size: str, img: int, path: Path) -> None:
    import torch

    from flowdet.detect.io import minimal_checkpoint
    from flowdet.export.onnx_export import export_onnx
    from flowdet.models.yolox import build_model

    ckpt = path.with_suffix(".pt")
    torch.save(minimal_checkpoint(build_model(size, 1), ["plastic"], (img, img)), ckpt)
    export_onnx(ckpt, path, parity=False, log=lambda m: None)


def bench_size(size: str, img: int, threads: list[int], runs: int, warmup: int, tmp: Path) -> list[dict]:
    import torch

    from flowdet.models.yolox import build_model
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    rows = []
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, img, img)).astype(np.float32)
    model = build_model(size, 1).eval().fuse()
    xt = torch.from_numpy(x)
    for t in threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            r = _time(lambda: model.predict(xt), runs, warmup)
        rows.append({"model": f"yolox-{size}", "backend": "pytorch-eager", "threads": t, **r})
    onnx_path = tmp / f"{size}.onnx"
    _export(size, img, onnx_path)
    frame = np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    for t in threads:
        for spinning in (True, False):
            p = OnnxPredictor(onnx_path, providers="cpu", threads=t, spinning=spinning)
            r = _time(lambda p=p: p.infer(x), runs, warmup)
            rows.append({"model": f"yolox-{size}", "backend": "onnxruntime-cpu" + ("" if spinning else " (no spin)"),
                         "threads": t, **r})
        p = OnnxPredictor(onnx_path, providers="cpu", threads=threads[-1], spinning=False)
    r = _time(lambda: p.predict([frame], conf=0.25), runs, warmup)
    rows.append({"model": f"yolox-{size}", "backend": "onnxruntime-cpu end-to-end 1080p (no spin)",
                 "threads": threads[-1], **r})
    return rows


def bench_yolov8n(img: int, threads: list[int], runs: int, warmup: int) -> list[dict]:
    try:
        from ultralytics import YOLO
    except ImportError:
        print("note: ultralytics is not installed (pip install 'flowdet[bench]'): YOLOv8n comparison skipped")
        return []
    import torch

    os.environ.setdefault("YOLO_OFFLINE", "1")
    net = YOLO("yolov8n.yaml").model.eval().fuse()  # from yaml: no weight download
    xt = torch.rand(1, 3, img, img)
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            r = _time(lambda: net(xt), runs, warmup)
        rows.append({"model": "yolov8n", "backend": "pytorch-eager", "threads": t, **r})
    return rows


def bench_extra_onnx(spec: str, img: int, threads: list[int], runs: int, warmup: int) -> list[dict]:
    """Time a foreign ONNX (e.g. ultralytics YOLOv8n exported with ``format='onnx'``) on the same
    onnxruntime, same session options, same 1×3×img×img float32 input as flowdet's rows."""
    import onnxruntime as ort

    from flowdet.runtime.predict.onnx_runtime import session_options

    name, path = spec.split("=", 1)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, img, img)).astype(np.float32)
    rows = []
    for t in threads:
        for spinning in (True, False):
            sess = ort.InferenceSession(path, session_options(t, spinning), providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x}
            r = _time(lambda sess=sess, feed=feed: sess.run(None, feed), runs, warmup)
            rows.append({"model": name, "backend": "onnxruntime-cpu" + ("" if spinning else " (no spin)"),
                         "threads": t, **r})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="nano,tiny,s")
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--extra-onnx", action="append", default=[], metavar="NAME=PATH",
                    help="also time this ONNX on the same runtime (e.g. yolov8n=yolov8n.onnx from ultralytics export)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cpu cores {os.cpu_count()}, load average {load:.2f} (other processes inflate these numbers)")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            rows += bench_size(size, args.img, threads, args.runs, args.warmup, Path(tmp))
            for r in rows[-(3 * len(threads) + 1):]:
                print(f"{r['model']:<12} {r['backend']:<44} threads {r['threads']}  median {r['median_ms']:8.2f} ms"
                      f"  p90 {r['p90_ms']:8.2f} ms  cpu {r['cpu_ms']:8.2f} ms")
    for spec in args.extra_onnx:
        for r in bench_extra_onnx(spec, args.img, threads, args.runs, args.warmup):
            rows.append(r)
            print(f"{r['model']:<12} {r['backend']:<44} threads {r['threads']}  median {r['median_ms']:8.2f} ms"
                  f"  p90 {r['p90_ms']:8.2f} ms  cpu {r['cpu_ms']:8.2f} ms")
    for r in bench_yolov8n(args.img, threads, args.runs, args.warmup):
        rows.append(r)
        print(f"{r['model']:<12} {r['backend']:<44} threads {r['threads']}  median {r['median_ms']:8.2f} ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"img": args.img, "load_average": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
