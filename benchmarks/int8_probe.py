"""Where OpenVINO INT8 spends its time on this CPU, and what each NNCF setting changes.

Builds INT8 IRs of one fp32 flowdet ONNX with named quantization settings (``--variants``, table
``VARIANTS``), then per variant: OpenVINO's per-layer profile (``PERF_COUNT``: exec type, i.e.
kernel + precision, and time per fused node, summed by model part), latency against onnxruntime
fp32 (medians of interleaved runs, onnxruntime without spinning, OpenVINO with the same
``INFERENCE_NUM_THREADS``), and AP on a val set.

    PYTHONPATH=. python benchmarks/int8_probe.py --onnx m.onnx --calib ../shared/data/grogol-960/train.json \\
        --out runs/int8-probe --variants gate,full-graph --profile --threads 1,2 --runs 30 --rounds 3 \\
        [--val ../shared/data/grogol-960/val.json]

An AVX2-only CPU on a box with AVX-512 VNNI: run it under ``LD_PRELOAD=benchmarks/isa/avx2only.so``
(see ``benchmarks/isa/avx2only.c``); the script prints the ISA the process sees.
Writes ``<out>/probe.json`` and ``<out>/<variant>.xml`` (+ ``.bin``; reused unless ``--rebuild``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# name → flowdet.export.quantize.OvQuantOptions fields (and "frames": calibration frames)
VARIANTS: dict[str, dict] = {
    "gate": {},  # flowdet's gate as it was: Conv/MatMul inputs only, mixed preset, head preds fp32
    "full-graph": {"conv_only": False},  # NNCF's own CPU pattern: Add/Concat/MaxPool/Resize inputs too
    "full-graph-perf": {"conv_only": False, "preset": "performance"},
    "perf": {"preset": "performance"},  # symmetric activations
    "head-int8": {"head_fp32": False},
    "full-head-int8": {"conv_only": False, "head_fp32": False},
    "ovf-enable": {"overflow_fix": "enable"},  # 7-bit weights everywhere (no int16 saturation without VNNI)
    "full-ovf-enable": {"conv_only": False, "overflow_fix": "enable"},
    "ovf-disable": {"overflow_fix": "disable"},
    "full-ovf-disable": {"conv_only": False, "overflow_fix": "disable"},
    "slow-bc": {"fast_bias_correction": False},
    "full-slow-bc": {"conv_only": False, "fast_bias_correction": False},
    "pw-fp32": {"pointwise_fp32": True},  # 1×1 convs fp32, k×k INT8
    "pw-fp32-ovf": {"pointwise_fp32": True, "overflow_fix": "enable"},
    "calib128": {"frames": 128},
    "calib300": {"frames": 300},
    "full-calib128": {"conv_only": False, "frames": 128},
}
PARTS = [("stem", r"/backbone/stem/"), ("dark2", r"/backbone/dark2/"), ("dark3", r"/backbone/dark3/"),
         ("dark4", r"/backbone/dark4/"), ("dark5", r"/backbone/dark5/"), ("neck", r"/neck/"),
         ("head s8", r"/head/[a-z_]+\.0[/.]"), ("head s16", r"/head/[a-z_]+\.1[/.]"),
         ("head s32", r"/head/[a-z_]+\.2[/.]")]


def part_of(node: str) -> str:
    """The model part a profiled node belongs to (first match in its name; decode/IO otherwise)."""
    best = None
    for name, pat in PARTS:
        m = re.search(pat, node)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return best[1] if best else "decode / io"


def precision_of(exec_type: str) -> str:
    """'jit_avx2_I8' → 'I8', 'brgconv_avx512_FP32' → 'FP32'."""
    tail = exec_type.rsplit("_", 1)[-1].upper()
    return {"U8": "I8", "I8": "I8", "FP32": "FP32", "F32": "FP32", "BF16": "BF16"}.get(tail, tail)


def seen_isa() -> dict:
    import openvino as ov

    from flowdet.export.gate import cpu_flags

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {"cpuinfo": cpu_flags(), "openvino_caps": list(caps), "ld_preload": os.environ.get("LD_PRELOAD", "")}


def build(variant: str, fp32: Path, out: Path, calib: str, rebuild: bool) -> Path:
    from flowdet.export.calib import calibration_batches, load_calibration_frames
    from flowdet.export.edge import quiet_quantizers
    from flowdet.export.quantize import OvQuantOptions, quantize_openvino
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    xml = out / f"{variant}.xml"
    if xml.is_file() and not rebuild:
        return xml
    spec = dict(VARIANTS[variant])
    frames = load_calibration_frames(calib, spec.pop("frames", 32))
    batches = calibration_batches(frames, OnnxPredictor(fp32, providers="cpu", threads=1).img_size)
    t0 = time.perf_counter()
    with quiet_quantizers():
        quantize_openvino(fp32, xml, batches, {"calib_frames": len(frames)}, options=OvQuantOptions(**spec),
                          log=print)
    print(f"{variant}: quantized in {time.perf_counter() - t0:.0f} s", flush=True)
    return xml


def profile(models: dict[str, Path], frame: np.ndarray, threads: int, runs: int) -> dict[str, dict]:
    """Per model: per-node time (ms per inference, mean over ``runs``) with exec type, and sums by
    part / op kind / precision. The models run interleaved (a, b, a, b, …), so a load change on a
    shared box hits every model alike and node times compare across models."""
    import openvino as ov

    core = ov.Core()
    cfg = {"PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
           "INFERENCE_NUM_THREADS": threads}
    reqs = {v: core.compile_model(core.read_model(str(p)), "CPU", cfg).create_infer_request() for v, p in models.items()}
    for req in reqs.values():
        for _ in range(3):
            req.infer({0: frame})
    nodes: dict[str, dict[str, dict]] = {v: {} for v in reqs}
    for _ in range(runs):
        for v, req in reqs.items():
            req.infer({0: frame})
            for p in req.get_profiling_info():
                if p.status != p.Status.EXECUTED:
                    continue
                n = nodes[v].setdefault(p.node_name, {"type": p.node_type, "exec": p.exec_type, "ms": 0.0})
                n["ms"] += p.real_time.total_seconds() * 1000.0 / runs
    out = {}
    for v, ns in nodes.items():
        by: dict[str, float] = defaultdict(float)
        for name, n in ns.items():
            kind = "Reorder" if n["type"] == "Reorder" else ("Conv" if "Convolution" in n["type"] else "other")
            by[f"{part_of(name)}|{kind}|{precision_of(n['exec'])}"] += n["ms"]
        out[v] = {"total_ms": sum(n["ms"] for n in ns.values()), "by": dict(by), "nodes": ns}
    return out


def latency(models: dict[str, Path], ort_fp32: Path, frame: np.ndarray, threads: int, runs: int) -> dict[str, float]:
    from flowdet.export.gate import interleaved_latency
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor
    from flowdet.runtime.predict.openvino_runtime import OpenVinoPredictor

    preds: list[Any] = [OnnxPredictor(ort_fp32, providers="cpu", threads=threads, spinning=False)]
    preds += [OpenVinoPredictor(p, precision="fp32", threads=threads) for p in models.values()]
    ms = interleaved_latency(preds, frame, runs)
    return dict(zip(["ort-fp32", *models], ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", required=True, help="flowdet fp32 .onnx")
    ap.add_argument("--calib", required=True, help="calibration frames (train json / folder / video; never val)")
    ap.add_argument("--variants", default="gate,full-graph")
    ap.add_argument("--val", help="COCO val json: AP of fp32 and every variant")
    ap.add_argument("--profile", action="store_true", help="OpenVINO per-layer profile, 1 thread, models interleaved")
    ap.add_argument("--profile-runs", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="latency: comma list ('' = no latency runs)")
    ap.add_argument("--runs", type=int, default=30, help="interleaved runs per round")
    ap.add_argument("--rounds", type=int, default=1, help="latency rounds; the table gives the median of round medians")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out, fp32 = Path(args.out), Path(args.onnx)
    out.mkdir(parents=True, exist_ok=True)
    from flowdet.export.calib import calibration_batches, load_calibration_frames

    result: dict = {"command": " ".join(sys.argv), "isa": seen_isa(), "loadavg_before": os.getloadavg()}
    print("ISA seen:", result["isa"]["openvino_caps"], "| LD_PRELOAD", result["isa"]["ld_preload"] or "-", flush=True)
    variants = [v for v in args.variants.split(",") if v]
    models = {v: build(v, fp32, out, args.calib, args.rebuild) for v in variants}
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    # the gate's timing frame (first val image; else the first calibration frame), without torch
    img_size = OnnxPredictor(fp32, providers="cpu", threads=1).img_size
    frame = calibration_batches(load_calibration_frames(args.val or args.calib, 1), img_size)[0]
    if args.profile:
        result["profile"] = profile({"ov-fp32": fp32, **models}, frame, 1, args.profile_runs)
        for v, prof in result["profile"].items():
            print(f"profile {v}: {prof['total_ms']:.1f} ms summed over nodes", flush=True)
    if args.val:
        from flowdet.detect.evaluate import evaluate
        from flowdet.runtime.predict.openvino_runtime import OpenVinoPredictor

        result["ap"] = {}
        for v, p in {"ort-fp32": fp32, **models}.items():
            pred = (OnnxPredictor(p, providers="cpu", threads=2) if v == "ort-fp32"
                    else OpenVinoPredictor(p, precision="fp32", threads=2))
            s = evaluate(pred, args.val, None, batch=1, progress=False, verbose=False)
            result["ap"][v] = {k: round(float(s[k]), 4) for k in ("AP", "AP50", "APs")}
            print(f"AP {v}: {result['ap'][v]}", flush=True)
    result["latency"] = {}
    for t in [int(x) for x in args.threads.split(",") if x]:
        rounds = [latency({"ov-fp32": fp32, **models}, fp32, frame, t, args.runs) for _ in range(args.rounds)]
        med = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}
        result["latency"][str(t)] = {"rounds": rounds, "median": med}
        print(f"{t} thread(s): " + ", ".join(f"{k} {m:.1f} ms ({med['ort-fp32'] / m:.2f}x)" for k, m in med.items()),
              flush=True)
    result["loadavg_after"] = os.getloadavg()
    (out / "probe.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
