"""Speed evidence in one run: inference latency, stream throughput, training throughput — flowdet vs
ultralytics, with ratios.

1. latency (``latency.py``): batch 1 at ``--img``, onnxruntime CPU, 1 and 2 threads, medians of
   ``--runs`` calls after warm-up: flowdet nano/tiny/s vs YOLOv8n / YOLO26n ONNX (exported here from
   yaml by ``--ultra-python``: latency does not depend on the weights).
2. stream (``stream_bench.py``): ``flowdet stream`` on the real video vs the raw model loop.
3. training (``train_step.py``): forward + loss + backward + step on one identical real batch,
   flowdet nano vs YOLOv8n / YOLO26n, 1 thread.
Each part writes its JSON under ``--out``; a finished part is not re-run (delete its JSON to redo).
The summary (``speed.md``) lists medians and flowdet/ultralytics ratios. Run on a quiet machine:
other processes inflate every number (the load average is recorded).

    python benchmarks/speed.py --ultra-python /path/to/bench/python --out runs/bench/speed
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ULTRA = ["yolov8n", "yolo26n"]


def sh(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> None:
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        sys.exit(f"failed (rc {r.returncode}): {' '.join(cmd)}")


def export_ultra(py: str, name: str, img: int | tuple[int, int], out: Path) -> Path:
    """ultralytics model from yaml with one class (as trained here) → ONNX (opset 17, static
    1×3×img×img, or 1×3×H×W for img = (H, W): the rect input ultralytics predicts with; no simplifier)."""
    out = Path(out).resolve()  # the exporter runs with cwd=out: a relative OUT would be looked up inside itself
    path = out / (f"{name}.onnx" if isinstance(img, int) else f"{name}-{img[1]}x{img[0]}.onnx")
    img = img if isinstance(img, int) else list(img)
    if not path.exists():
        # Each export in its own folder: ultralytics writes <name>.onnx next to the yaml, which in OUT
        # itself is the square file's final path, so a later rect export would overwrite and move it away.
        work = out / f".export-{path.stem}"
        work.mkdir(parents=True, exist_ok=True)
        code = (f"import os, shutil, yaml; os.environ['YOLO_OFFLINE']='1'\n"
                f"from ultralytics import YOLO\nfrom ultralytics.nn.tasks import yaml_model_load\n"
                f"d = yaml_model_load('{name}.yaml'); d['nc'] = 1; d.pop('yaml_file', None)\n"
                f"open('{name}.yaml', 'w').write(yaml.safe_dump(d))\n"
                f"p = YOLO('{work}/{name}.yaml').export(format='onnx', imgsz={img}, opset=17, simplify=False, dynamic=False)\n"
                f"shutil.move(p, '{path}')")
        sh([py, "-c", code], cwd=work)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/speed"))
    ap.add_argument("--ultra-python", default=None, help="interpreter with ultralytics (bench extra); omit to skip its rows")
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sizes", default="nano,tiny,s")
    ap.add_argument("--train-iters", type=int, default=20)
    ap.add_argument("--stream-frames", type=int, default=150)
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    one = {"OMP_NUM_THREADS": "1"}

    lat = out / "latency.json"
    if not lat.exists():
        extra = []
        if args.ultra_python:
            extra = sum((["--extra-onnx", f"{n}={export_ultra(args.ultra_python, n, args.img, out)}"] for n in ULTRA), [])
        sh([py, str(HERE / "latency.py"), "--sizes", args.sizes, "--img", str(args.img), "--threads", "1,2",
            "--runs", str(args.runs), "--warmup", "5", "--json", str(lat), *extra])
    stream = out / "stream.json"
    if not stream.exists():
        sh([py, str(HERE / "stream_bench.py"), "--threads", "1,2", "--frames", str(args.stream_frames),
            "--img", str(args.img), "--rounds", "3", "--json", str(stream)])
    batch = out / "train_batch.npz"
    train = {"nano": out / "train_nano.json"}
    if not train["nano"].exists():
        sh([py, str(HERE / "train_step.py"), "--impl", "flowdet", "--size", "nano", "--img", str(args.img),
            "--iters", str(args.train_iters), "--batch-file", str(batch), "--json", str(train["nano"])], env=one)
    if args.ultra_python:
        for n in ULTRA:
            train[n] = out / f"train_{n}.json"
            if not train[n].exists():
                sh([args.ultra_python, str(HERE / "train_step.py"), "--impl", "ultralytics", "--model", f"{n}.yaml",
                    "--img", str(args.img), "--iters", str(args.train_iters), "--batch-file", str(batch),
                    "--json", str(train[n])], env=one)
    summary = summarize(json.loads(lat.read_text()), json.loads(stream.read_text()),
                        {k: json.loads(v.read_text()) for k, v in train.items() if v.exists()})
    (out / "speed.md").write_text(summary)
    print(summary)


def summarize(lat: dict, stream: dict, train: dict) -> str:
    rows = [r for r in lat["rows"] if r["backend"] == "onnxruntime-cpu (no spin)"]
    by = {(r["model"], r["threads"]): r for r in rows}
    lines = [f"load average at start {lat['load_average']:.2f}", "",
             "| model | threads | median ms | p90 ms | CPU ms | latency ÷ yolov8n |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = by.get(("yolov8n", r["threads"]))
        ratio = f"{r['median_ms'] / ref['median_ms']:.2f}×" if ref else "—"
        lines.append(f"| {r['model']} | {r['threads']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['cpu_ms']:.1f} | {ratio} |")
    lines += ["", "| stream | threads | raw fps | stream fps | stream / raw |", "|---|---|---|---|---|"]
    for r in stream.get("rows", []):
        lines.append(f"| {stream.get('model', '')} | {r.get('threads')} | {r.get('raw_fps', float('nan')):.1f} | "
                     f"{r.get('stream_fps', float('nan')):.1f} | {r.get('ratio', float('nan')):.2f} |")
    lines += ["", "| training step (batch, img) | params | step ms | img/s | speed vs yolov8n |", "|---|---|---|---|---|"]
    ref = train.get("yolov8n")
    for r in train.values():
        ratio = f"{ref['step_ms'] / r['step_ms']:.2f}×" if ref else "—"
        lines.append(f"| {r['model']} ({r['batch']}, {r['img']}) | {r['params'] / 1e6:.2f} M | {r['step_ms']:.0f} | "
                     f"{r['img_s']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
