"""CPU backends and precisions side by side: onnxruntime fp32 / INT8 (QDQ), OpenVINO fp32 / bf16 /
INT8 (NNCF; also with the bf16 hint for its non-quantized ops) — latency at 1 and 2 threads (medians of interleaved runs), AP on a val set, size on disk.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/edge_backends.py \\
        --model runs/bench/acc30-960x544/tiny-960x544/last.pt \\
        --val ../shared/data/grogol-960/val.json --calib ../shared/data/grogol-960/train.json \\
        --out runs/edge-bench/nano-960x544

``--model``: a flowdet ``.pt`` (exported to fp32 ONNX first) or a flowdet ``.onnx``; or any other
ONNX with one image input (e.g. ultralytics' ``yolo26n.onnx``) with ``--raw``: latency and size
only (no flowdet metadata, so no decode/AP; calibration still uses real frames, letterboxed, as
RGB 0–1 — ultralytics' input convention).
Writes ``<out>/edge_backends.json`` and ``<out>/table.md``. ``--note loaded`` marks a run on a busy
box (its latencies are not final; the AP and size columns do not depend on load).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("ort-fp32", "ort-int8", "ov-fp32", "ov-bf16", "ov-int8", "ov-int8-bf16")


class RawOnnx:
    """A non-flowdet ONNX on onnxruntime: ``infer`` only (latency), input size from the graph."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        from flowdet.runtime.predict.onnx_runtime import session_options

        self.session = ort.InferenceSession(str(path), session_options(threads, spinning=False),
                                            providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name, self.img_size = inp.name, tuple(int(v) for v in inp.shape[2:])

    def infer(self, batch: np.ndarray):
        return self.session.run(None, {self.input_name: batch})


class RawOpenVino:
    def __init__(self, path: Path, threads: int, precision: str):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        cfg = {"INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision], "PERFORMANCE_HINT": "LATENCY",
               "INFERENCE_NUM_THREADS": int(threads)}
        self.compiled = core.compile_model(model, "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        self.img_size = tuple(model.inputs[0].get_partial_shape().get_min_shape()[2:])

    def infer(self, batch: np.ndarray):
        return self.request.infer({0: batch})


def graph_img_size(onnx_path: Path) -> tuple[int, int]:
    import onnx

    dims = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value), int(dims[3].dim_value)


def size_mb(path: Path) -> float:
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 2**20, 2)


def build_models(args: argparse.Namespace, out: Path) -> dict[str, tuple[Path, str]]:
    """variant → (model file, OpenVINO precision or "")."""
    from flowdet.export.calib import calibration_batches, load_calibration_frames
    from flowdet.export.edge import quiet_quantizers
    from flowdet.export.quantize import quantize_onnxruntime, quantize_openvino

    model = Path(args.model)
    if model.suffix == ".onnx":
        fp32 = model
    else:
        from flowdet.export.onnx_export import export_onnx

        fp32 = out / f"{model.stem}.fp32.onnx"
        if not fp32.is_file():
            export_onnx(model, fp32, img_size=args.img_size, parity_data=args.calib, log=print)
    img_size = graph_img_size(fp32)
    ort_int8, ov_int8 = out / f"{fp32.stem}.ort-int8.onnx", out / f"{fp32.stem}.ov-int8.xml"
    if args.rebuild or not (ort_int8.is_file() and ov_int8.is_file()):
        frames = load_calibration_frames(args.calib, args.calib_frames)
        batches = calibration_batches(frames, img_size)
        if args.raw:  # ultralytics' input convention: RGB, 0–1
            batches = [np.ascontiguousarray(b[:, ::-1] / 255.0, dtype=np.float32) for b in batches]
        info = {"calib_source": str(args.calib), "calib_frames": len(frames)}
        if args.raw:  # no flowdet metadata to copy; the quantizers only need the graph
            info["raw"] = True
        with quiet_quantizers():
            quantize_onnxruntime(fp32, ort_int8, batches, info, log=print)
            quantize_openvino(fp32, ov_int8, batches, info, log=print)
    return {"ort-fp32": (fp32, ""), "ort-int8": (ort_int8, ""), "ov-fp32": (fp32, "fp32"),
            "ov-bf16": (fp32, "bf16"), "ov-int8": (ov_int8, "fp32"), "ov-int8-bf16": (ov_int8, "bf16")}


def load(variant: str, path: Path, precision: str, threads: int, raw: bool):
    if raw:
        return RawOpenVino(path, threads, precision) if precision else RawOnnx(path, threads)
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor
    from flowdet.runtime.predict.openvino_runtime import OpenVinoPredictor

    if precision:
        return OpenVinoPredictor(path, precision=precision, threads=threads)
    # No spinning: in an interleaved run a spinning onnxruntime worker would eat the next model's core.
    return OnnxPredictor(path, providers="cpu", threads=threads, spinning=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="flowdet .pt / .onnx, or any ONNX with --raw")
    ap.add_argument("--val", help="COCO val json (AP); omitted or --raw: latency only")
    ap.add_argument("--images", help="val image folder [default: next to --val]")
    ap.add_argument("--calib", required=True, help="calibration frames: train json, image folder or video (never val)")
    ap.add_argument("--calib-frames", type=int, default=32)
    ap.add_argument("--img-size", default=None, help="export size for a .pt [default: its own]")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--runs", type=int, default=30, help="interleaved latency runs per variant and thread count")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--ap-variants", default=None, help="score only these on --val [default: every variant]")
    ap.add_argument("--raw", action="store_true", help="not a flowdet model: latency and size only")
    ap.add_argument("--rebuild", action="store_true", help="re-quantize even if the INT8 models exist")
    ap.add_argument("--note", default="", help="e.g. 'loaded' when other jobs share the CPU")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from flowdet.export.gate import cpu_flags, interleaved_latency

    variants = [v for v in args.variants.split(",") if v]
    models = {v: m for v, m in build_models(args, out).items() if v in variants}
    rows: dict[str, dict] = {v: {"model": str(p), "size_mb": size_mb(p), "precision": prec or "file"}
                             for v, (p, prec) in models.items()}
    if args.val and not args.raw:
        from flowdet.detect.evaluate import evaluate

        scored = args.ap_variants.split(",") if args.ap_variants else list(models)
        for v, (p, prec) in models.items():
            if v not in scored:
                continue
            t0 = time.perf_counter()
            stats = evaluate(load(v, p, prec, 2, False), args.val, args.images, batch=1, progress=False, verbose=False)
            rows[v].update(AP=round(stats["AP"], 4), AP50=round(stats["AP50"], 4), APs=round(stats["APs"], 4))
            print(f"{v}: AP {stats['AP']:.4f} AP50 {stats['AP50']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    load_before = os.getloadavg()
    for t in [int(x) for x in args.threads.split(",")]:
        preds = [load(v, p, prec, t, args.raw) for v, (p, prec) in models.items()]
        size = preds[0].img_size
        from flowdet.export.gate import timing_frame

        frame = timing_frame(args.val if not args.raw else None, args.images, size)
        ms = interleaved_latency(preds, frame, args.runs)
        for v, m in zip(models, ms):
            rows[v][f"ms_{t}t"] = round(m, 2)
        base = rows["ort-fp32"][f"ms_{t}t"] if "ort-fp32" in rows else None
        print(f"{t} thread(s): " + ", ".join(f"{v} {m:.1f} ms" for v, m in zip(models, ms)), flush=True)
        if base:
            for v in models:
                rows[v][f"speedup_{t}t"] = round(base / rows[v][f"ms_{t}t"], 2)
        del preds
    result = {"model": args.model, "val": args.val, "calib": args.calib, "calib_frames": args.calib_frames,
              "runs": args.runs, "note": args.note, "cpu": cpu_flags(), "python": platform.python_version(),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "rows": rows,
              "command": " ".join(sys.argv)}
    (out / "edge_backends.json").write_text(json.dumps(result, indent=2))
    threads = [int(x) for x in args.threads.split(",")]
    head = ["variant", "AP", "AP50", "size MB"] + [f"ms {t} thr" for t in threads] + [f"× ort-fp32 {t} thr" for t in threads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v, r in rows.items():
        cells = [v, str(r.get("AP", "—")), str(r.get("AP50", "—")), str(r["size_mb"])]
        cells += [str(r.get(f"ms_{t}t", "—")) for t in threads] + [str(r.get(f"speedup_{t}t", "—")) for t in threads]
        lines.append("| " + " | ".join(cells) + " |")
    note = f" ({args.note})" if args.note else ""
    lines.append(f"\nmedians of {args.runs} interleaved runs{note}; load average before/after "
                 f"{load_before[0]:.2f} / {result['loadavg_after'][0]:.2f}; CPU {result['cpu']['model']}")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
