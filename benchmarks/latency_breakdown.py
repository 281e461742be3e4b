"""Where a model's CPU latency goes, and candidate sizes' latency against a baseline, in one run.

Every architecture's ONNX (random-init, flowdet's exporter, BN fused) runs under onnxruntime's
profiler, spinning off, the models **interleaved** run by run, ``--rounds`` rounds of ``--runs`` runs
at each of ``--threads``. A node's time is the **minimum** of its kernel times over a round's runs:
on a loaded box a low-priority process is preempted inside kernels, which inflates wall times and
medians (nano-d 832×480 under two training lanes at nice 19: wall median 1174 ms per run, thread CPU
time 71 ms, per-node medians summed 89 ms, per-node minima summed 65 ms), while each node's minimum
is a run it got the core(s) for. The sum of the minima estimates an idle box's latency; each round's
sum gives a ratio to the first architecture (the baseline). Process CPU time per run is recorded as
a check (1 thread: it should be just above the sum of minima).

The breakdown sums the minima (all 1-thread rounds pooled) into model parts (backbone stem /
dark2..dark5, neck, head per stride: ``int8_probe.PARTS``), the head parts also by submodule (stem
1×1, cls/reg 3×3 branches, prediction convs). Parameters and GFLOPs come with every architecture
(``accuracy.flowdet_gflops``: FLOPs = 2·MACs, ultralytics' convention).

    python benchmarks/latency_breakdown.py --arch nano-d=nano-d:832x480 --arch tiny=tiny:832x480 \
        --runs 15 --rounds 3 --threads 1,2 --out runs/bench/breakdown
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy import flowdet_gflops, flowdet_params  # noqa: E402
from accuracy_latency import _flowdet_arch, _flowdet_onnx, onnx_session  # noqa: E402
from int8_probe import part_of  # noqa: E402

HEAD_SUBMODULES = (("stem 1×1", "/stems."), ("cls 3×3", "/cls_convs."), ("reg 3×3", "/reg_convs."),
                   ("preds 1×1", "_preds."))
KERNEL = "_kernel_time"  # onnxruntime's profile event name suffix of a node's kernel


def sub_part(part: str, node: str) -> str:
    """A head part split by submodule ('head s8 / cls 3×3'); any other part as it is."""
    if not part.startswith("head"):
        return part
    for name, key in HEAD_SUBMODULES:
        if key in node:
            return f"{part} / {name}"
    return f"{part} / concat"


def node_minima(profile_json: Path, warmup: int) -> dict[str, float]:
    """{node: least kernel time in ms} over the profiled runs after the first ``warmup``."""
    per_node: dict[str, list[float]] = defaultdict(list)
    for e in json.loads(profile_json.read_text()):
        if e.get("cat") == "Node" and e["name"].endswith(KERNEL):
            per_node[e["name"][: -len(KERNEL)]].append(e["dur"] / 1000)
    return {k: min(v[warmup:] or v) for k, v in per_node.items()}


def profile_round(models: dict[str, Path], threads: int, runs: int, warmup: int, out: Path) -> dict[str, dict]:
    """One interleaved round: {arch: {"nodes": {node: min ms}, "cpu_ms": median process CPU per run,
    "wall_ms": median wall per run}}."""
    sessions = {k: onnx_session(p, threads, out / f"prof-{k}-{threads}t") for k, p in models.items()}
    for _, fn in sessions.values():
        for _ in range(warmup):
            fn()
    cpu: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        for k, (_, fn) in sessions.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            wall[k].append((time.perf_counter() - t) * 1000)
            cpu[k].append((time.process_time() - c) * 1000)
    result = {}
    for k, (s, _) in sessions.items():
        path = Path(s.end_profiling())
        result[k] = {"nodes": node_minima(path, warmup), "cpu_ms": round(statistics.median(cpu[k]), 2),
                     "wall_ms": round(statistics.median(wall[k]), 2)}
        path.unlink()
    return result


def parts_of(nodes: dict[str, float]) -> dict[str, float]:
    """Node minima summed into parts and head sub-parts, plus the rolled-up 'backbone' and 'head'."""
    out: dict[str, float] = defaultdict(float)
    for node, ms in nodes.items():
        sub = sub_part(part_of(node), node)
        top = sub.split(" / ")[0]
        out[top] += ms
        if sub != top:
            out[sub] += ms
        if re.match(r"stem|dark\d", top):
            out["backbone"] += ms
        elif top.startswith("head"):
            out["head"] += ms
    return {k: round(v, 3) for k, v in out.items()}


def run_rounds(models: dict[str, Path], args: argparse.Namespace) -> dict[str, dict]:
    """{'1t': {'rounds': [profile_round ...], 'est_ms': {arch: [...]}, 'ratio': {arch: [...]}}, ...}."""
    base = next(iter(models))
    out = {}
    for t in [int(t) for t in args.threads.split(",") if t]:
        rounds = [profile_round(models, t, args.runs, args.warmup, args.out) for _ in range(args.rounds)]
        est = {k: [round(sum(r[k]["nodes"].values()), 2) for r in rounds] for k in models}
        ratio = {k: [round(a / b, 3) for a, b in zip(v, est[base])] for k, v in est.items()}
        out[f"{t}t"] = {"rounds": rounds, "est_ms": est, "ratio": ratio}
        for k in models:
            cpu = [r[k]["cpu_ms"] for r in rounds]
            print(f"{t} thr  {k:<12} sum of node minima {est[k]} ms  ÷ {base} {ratio[k]} "
                  f"(median {statistics.median(ratio[k]):.3f}); process CPU per run {cpu} ms", flush=True)
    return out


def pooled_breakdown(rounds: list[dict], arch: str) -> dict[str, float]:
    """Parts of ``arch`` from each node's least time over all the given rounds."""
    nodes: dict[str, float] = {}
    for r in rounds:
        for n, ms in r[arch]["nodes"].items():
            nodes[n] = min(ms, nodes.get(n, ms))
    return parts_of(nodes)


def print_breakdown(name: str, parts: dict[str, float], total: float) -> None:
    print(f"\nbreakdown {name}: {total:.1f} ms (sum of node minima, 1 thread)")
    for part, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:<22} {ms:8.2f} ms  {100 * ms / total:5.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", default=[], metavar="NAME=SIZE:WxH",
                    help="an architecture (repeatable; the first is the baseline); default nano-d=nano-d:832x480")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/breakdown"))
    ap.add_argument("--runs", type=int, default=15, help="profiled runs per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="thread counts (the breakdown needs 1)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from flowdet.export.gate import cpu_flags, describe_cpu

    cpu = describe_cpu(cpu_flags())
    load = [os.getloadavg()[0]]
    print(f"CPU: {cpu}; load average {load[0]:.2f}", flush=True)
    archs = dict(a.partition("=")[::2] for a in (args.arch or ["nano-d=nano-d:832x480"]))
    models, info = {}, {}
    for name, spec in archs.items():
        size, hw, p2 = _flowdet_arch(spec)
        models[name] = _flowdet_onnx(size, hw, p2, args.out / f"{size}{'-p2' if p2 else ''}-{hw[1]}x{hw[0]}.onnx")
        info[name] = {"params_m": round(flowdet_params(size) / 1e6, 3), "gflops": round(flowdet_gflops(size, f"{hw[1]}x{hw[0]}"), 3)}
        print(f"{name} ({spec}): {info[name]['params_m']:.3f} M params, {info[name]['gflops']:.2f} GFLOPs", flush=True)
    lat = run_rounds(models, args)
    breakdown = {}
    if "1t" in lat:
        for name in models:
            breakdown[name] = pooled_breakdown(lat["1t"]["rounds"], name)
            print_breakdown(name, breakdown[name], sum(v for k, v in breakdown[name].items() if " / " not in k
                                                         and k not in ("backbone", "head")))
    load.append(os.getloadavg()[0])
    for v in lat.values():
        for r in v["rounds"]:
            for a in r.values():
                a.pop("nodes")
    (args.out / "breakdown.json").write_text(json.dumps(
        {"cpu": cpu, "load": load, "archs": archs, "info": info, "breakdown": breakdown, "latency": lat}, indent=1))
    print(f"load average before / after: {load[0]:.2f} / {load[1]:.2f}; wrote {args.out / 'breakdown.json'}")


if __name__ == "__main__":
    main()
