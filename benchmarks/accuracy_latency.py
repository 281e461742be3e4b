"""AP vs latency: every accuracy row with its ONNX latency at its own input size, one plot.

Reads one or more ``results.json`` of ``benchmarks/accuracy.py`` (each row records its model size,
input size and --set values), builds a random-init model of each flowdet row's architecture
(latency does not depend on the weights) and the ultralytics rows' ONNX from their yaml (one
class, via ``--ultra-python``), then times every model in the same run, **interleaved** (round k
of every model before round k + 1 of any), batch 1, onnxruntime CPU, 1 and 2 threads, spinning
off. Run it on a quiet box: the load average before and after is recorded.

Writes OUT/latency.json, OUT/table.md (AP, AP50, APs, AR@1000, ms@1, ms@2 per row) and
docs/img/accuracy_latency.png.

    python benchmarks/accuracy_latency.py --results runs/bench/acc30-640/results.json \
        --results runs/bench/acc30-960x544/results.json --ultra-python /path/to/bench/python \
        --reference "yolo26n-nbs8=0.205,0.554,0.196,640" --out runs/bench/acc-lat
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _flowdet_onnx(size: str, hw: tuple[int, int], p2: bool, path: Path) -> Path:
    import torch

    from flowdet.detect.io import minimal_checkpoint
    from flowdet.export.onnx_export import export_onnx
    from flowdet.models.yolox import build_model

    if not path.exists():
        torch.manual_seed(0)
        ckpt = path.with_suffix(".pt")
        torch.save(minimal_checkpoint(build_model(size, 1, p2=p2), ["debris"], hw), ckpt)
        export_onnx(ckpt, path, parity=False, log=lambda m: None)
    return path


def onnx_session(path: Path, threads: int, profile_prefix: Path | None = None):
    """(CPU session with spinning off — flowdet's runtime options —, a function running it once on a fixed
    random input); ``profile_prefix``: onnxruntime's profiler on, its json under that prefix."""
    import onnxruntime as ort

    from flowdet.runtime.predict.onnx_runtime import session_options

    so = session_options(threads, spinning=False)
    if profile_prefix is not None:
        so.enable_profiling, so.profile_file_prefix = True, str(profile_prefix)
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    return s, lambda: s.run(None, {inp.name: x})


def time_interleaved(models: dict[str, Path], threads: int, runs: int, warmup: int) -> dict[str, float]:
    fns = {k: onnx_session(p, threads)[1] for k, p in models.items()}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 2) for k, v in ts.items()}


def _row_arch(row: dict, budget: dict) -> tuple[str, tuple[int, int], bool]:
    from flowdet.core.size import InputSize

    sets = row.get("sets", [])
    size = row.get("size", "nano")
    img = next((s.split("=", 1)[1] for s in reversed(sets) if s.startswith("train.img_size=")), budget.get("img_size", 640))
    p2 = any(s in ("model.p2=true", "model.p2=True") for s in sets)
    return size, InputSize.parse(img), p2


def _flowdet_arch(spec: str) -> tuple[str, tuple[int, int], bool]:
    """'SIZE:IMG[:p2]' (e.g. 'nano-d:832x480') → (size, (h, w), p2)."""
    from flowdet.core.size import InputSize

    parts = spec.split(":")
    return parts[0], InputSize.parse(parts[1]), len(parts) > 2 and parts[2] == "p2"


def _arch(spec: str) -> tuple:
    """An --arch value: 'yolo26n:640x384' (ultralytics; a square side as one number or WxH) →
    (family, side or (h, w)), as the rows of an accuracy json; any other → ``_flowdet_arch``."""
    from flowdet.core.size import InputSize

    name, _, img = spec.partition(":")
    if not name.startswith("yolo"):
        return _flowdet_arch(spec)
    hw = InputSize.parse(img)
    return name, hw[0] if hw[0] == hw[1] else hw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", action="append", default=[], help="results.json of benchmarks/accuracy.py (repeatable)")
    ap.add_argument("--reference", action="append", default=[], metavar="NAME=AP,AP50,APs,IMG",
                    help="an accuracy row measured elsewhere (e.g. an earlier session), timed here by its ONNX; "
                         "IMG is the side for a yolo* row, SIZE:WxH[:p2] for a flowdet row")
    ap.add_argument("--arch", action="append", default=[], metavar="NAME=SIZE:IMG[:p2]",
                    help="time an architecture with no accuracy row (e.g. 'nano-d@960x544=nano-d:960x544', "
                         "or an ultralytics one from its yaml: 'yolo26n@832x480=yolo26n:832x480')")
    ap.add_argument("--ultra-python", default=None, help="interpreter with ultralytics, to export yolo rows")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/acc-lat"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "accuracy_latency.png")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from OUT/latency.json (no timing)")
    args = ap.parse_args()
    if args.plot_only:
        saved = json.loads((args.out / "latency.json").read_text())
        col = next(iter(saved["latency"]))
        _plot(saved["rows"], saved["latency"][col], args.plot, col, saved.get("cpu", ""))
        return
    args.out.mkdir(parents=True, exist_ok=True)

    rows: dict[str, dict] = {}
    models: dict[str, Path] = {}
    for rp in args.results:
        res = json.loads(Path(rp).read_text())
        for name, row in res.get("rows", {}).items():
            if name.startswith("eff-"):
                continue
            key = f"{name} @{res['budget'].get('img_size')}"
            if name.startswith(("yolov8n", "yolo26n")):
                if row.get("score_hw"):  # scored at a rect input (benchmarks/accuracy.py --ultra-score-imgsz)
                    hw = tuple(row["score_hw"])
                    rows[name] = {**row, "arch": (family(name), hw[0] if hw[0] == hw[1] else hw)}
                else:
                    rows[key] = {**row, "arch": (name, int(str(res["budget"].get("img_size", 640)).split("x")[0]))}
                continue
            size, hw, p2 = _row_arch(row, res.get("budget", {}))
            rows[key] = {**row, "arch": (size, hw, p2)}
    for ref in args.reference:
        name, _, vals = ref.partition("=")
        ap_, ap50, aps, img = vals.split(",")
        if ":" in img:  # a flowdet row: SIZE:IMG[:p2]
            arch = _flowdet_arch(img)
        elif name.startswith("yolo"):  # SIDE (square) or WxH (rect, as ultralytics predicts 16:9 frames)
            from flowdet.core.size import InputSize

            hw = InputSize.parse(img)
            arch = (name.split("-")[0], hw[0] if hw[0] == hw[1] else hw)
        else:
            arch = None
        rows[name] = {"AP": float(ap_), "AP50": float(ap50), "APs": float(aps), "reference": True, "arch": arch}
    for spec in args.arch:
        name, _, a = spec.partition("=")
        rows[name] = {"arch": _arch(a)}
    for key, row in rows.items():
        arch = row.get("arch")
        if arch is None:
            continue
        if len(arch) == 2:  # ultralytics
            if not args.ultra_python:
                print(f"skip latency of {key}: no --ultra-python", file=sys.stderr)
                continue
            sys.path.insert(0, str(HERE))
            from speed import export_ultra

            models[key] = export_ultra(args.ultra_python, arch[0], arch[1], args.out)
        else:
            size, hw, p2 = arch
            models[key] = _flowdet_onnx(size, hw, p2, args.out / f"{size}{'-p2' if p2 else ''}-{hw[1]}x{hw[0]}.onnx")
    from flowdet.export.gate import cpu_flags, describe_cpu

    cpu = describe_cpu(cpu_flags())
    print(f"CPU: {cpu}", flush=True)
    load_before = os.getloadavg()[0]
    lat = {f"ms_{t}t": time_interleaved(models, int(t), args.runs, args.warmup) for t in args.threads.split(",")}
    load_after = os.getloadavg()[0]
    out = {"rows": {k: {kk: vv for kk, vv in v.items() if kk != "arch"} for k, v in rows.items()},
           "latency": lat, "load": [load_before, load_after], "runs": args.runs, "cpu": cpu}
    (args.out / "latency.json").write_text(json.dumps(out, indent=1))
    cols = list(lat)
    md = "| row | AP | AP50 | APs | AR@1000 | " + " | ".join(c.replace("ms_", "ms, ").replace("t", " thr") for c in cols) + " |\n"
    md += "|---" * (5 + len(cols)) + "|\n"
    for k, r in rows.items():
        ar = r.get("AR1000")
        f3 = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        md += (f"| {k}{' (earlier run)' if r.get('reference') else ''} | {f3(r.get('AP'))} | {f3(r.get('AP50'))} | "
               f"{f3(r.get('APs'))} | {f3(ar)} | " + " | ".join(str(lat[c].get(k, '—')) for c in cols) + " |\n")
    md += (f"\nCPU: {cpu}; load average before/after timing: {load_before:.2f} / {load_after:.2f}; "
           f"medians of {args.runs} interleaved runs\n")
    (args.out / "table.md").write_text(md)
    print(md)
    _plot(rows, lat[cols[0]], args.plot, cols[0], cpu)


def family(name: str) -> str:
    """The curve a row belongs to: 'yolo26n', 'yolov8n' or 'flowdet'."""
    for fam in ("yolo26n", "yolov8n"):
        if name.startswith(fam):
            return fam
    return "flowdet"


FAMILY_COLOURS = {"flowdet": "tab:blue", "yolo26n": "tab:red", "yolov8n": "tab:orange"}


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both latency (lower) and AP (higher), by latency."""
    front, best = [], -1.0
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _plot(rows: dict, lat: dict, path: Path, col: str, cpu: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    pts = sorted(((lat[k], r["AP"], k) for k, r in rows.items() if k in lat and r.get("AP") is not None),
                 key=lambda p: -p[1])
    for fam, colour in FAMILY_COLOURS.items():  # one Pareto curve per family over its sizes and inputs
        front = pareto([(x, y) for x, y, k in pts if family(k) == fam])
        if len(front) > 1:
            ax.plot(*zip(*front), color=colour, alpha=0.5, lw=1.2, label=f"{fam} (Pareto front)")
    placed: list[tuple[float, float]] = []
    for x, y, k in pts:
        c = FAMILY_COLOURS[family(k)]
        ax.scatter(x, y, color=c)
        # A label near an earlier one (close in both AP and ms) goes below its point instead.
        crowded = any(abs(y - py) < 0.006 and abs(x - px) < 8 for px, py in placed)
        placed.append((x, y))
        ax.annotate(k.split(" @")[0], (x, y), fontsize=7, xytext=(4, -9 if crowded else 3), textcoords="offset points")
    ax.set_xlabel(f"ONNX Runtime CPU latency, batch 1, {col.split('_')[1].replace('t', '')} thread(s) [ms]")
    ax.set_ylabel("AP on Grogol val (bridge 3)")
    ax.set_title("AP vs latency, each family over its input sizes" + (f"\n{cpu}" if cpu else ""), fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
