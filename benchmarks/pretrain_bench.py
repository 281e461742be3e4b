"""Pretraining cost: step time and peak memory per method vs a plain BYOL step; Sinkhorn vs map size.

Each method runs in a fresh subprocess (so peak RSS is its own) on random frames, same batch (frames
per step) and crop for all; BYOL and Self-EMD also get the same views (2 large + ``--small-views``).
CPU peak memory = peak RSS growth over the steps (ru_maxrss); CUDA = torch.cuda.max_memory_allocated.

    .venv/bin/python benchmarks/pretrain_bench.py --batch 8 --crop 128 --steps 6 --threads 1
    .venv/bin/python benchmarks/pretrain_bench.py --sinkhorn-only
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
METHODS = ["byol", "self-emd", "self-emd-dark5", "patch-contrast", "center-loss"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(method: str, args):
    """(model, optimizer, two fixed batches, crops per sample) for one method on random frames."""
    import numpy as np
    import torch
    from torch.utils.data import default_collate

    from flowdet.config import load_config
    from flowdet.pretrain.config import PretrainConfig
    from flowdet.pretrain.crops import CenterPatchSampler, PatchGridSampler, ViewSampler
    from flowdet.pretrain.train import build_method

    name = "self-emd" if method.startswith("self-emd") else method
    sets = [f"method.name={name}", f"model.size={args.size}", f"method.crop={args.crop}",
            f"method.small_views={args.small_views}", f"method.patch={args.crop}"]
    if method == "self-emd-dark5":
        sets.append("method.levels=[dark5]")
    cfg = load_config(PretrainConfig, None, sets)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8) for _ in range(4)]
    boxes = np.array([[100, 100, 115, 112], [300, 200, 320, 214]], np.float32)
    if name == "patch-contrast":
        sampler = PatchGridSampler(cfg.method, cfg.aug)
        make = lambda i: sampler(frames[i % 4], rng)  # noqa: E731
    elif name == "center-loss":
        sampler = CenterPatchSampler(cfg.method, cfg.aug)
        make = lambda i: sampler(frames[i % 4], boxes, rng)  # noqa: E731
    else:
        sampler = ViewSampler(cfg.method, cfg.aug)
        make = lambda i: sampler(frames[i % 4], rng)  # noqa: E731
    device = torch.device(args.device)
    batches = [{k: v.to(device) for k, v in default_collate([make(i) for i in range(args.batch)]).items()}
               for _ in range(2)]
    model = build_method(cfg).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    crops = sum(v.shape[1] for v in batches[0].values() if v.dim() == 5)
    return model, opt, batches, crops


def step(model, opt, batch, s: int) -> float:
    import torch

    cuda = next(model.parameters()).is_cuda
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = model(batch)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if hasattr(model, "after_step"):
        model.after_step(s + 1, 100)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def peak_memory(method: str, args) -> dict:
    """Run in its own process: peak RSS growth (CPU) or peak allocated (CUDA) over a few steps."""
    import torch

    torch.set_num_threads(args.threads)
    model, opt, batches, crops = build(method, args)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss0 = _rss_mb()
    for s in range(3):
        step(model, opt, batches[s % 2], s)
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else _rss_mb() - rss0
    return {"method": method, "peak_mb": peak, "crops_per_sample": crops}


def step_times(methods: list[str], args) -> dict[str, float]:
    """Median step time per method, methods interleaved round-robin so load changes hit all alike."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    built = {m: build(m, args) for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for s in range(args.warmup + args.steps):
        for m, (model, opt, batches, _) in built.items():
            t = step(model, opt, batches[s % 2], s)
            if s >= args.warmup:
                times[m].append(t)
    return {m: float(np.median(v)) for m, v in times.items()}


def sinkhorn_table(args) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from flowdet.pretrain.losses.sinkhorn import sinkhorn_emd

    torch.set_num_threads(args.threads)
    rows = []
    for g in (2, 4, 7, 10, 14, 20):
        n = g * g
        x = F.normalize(torch.randn(args.sinkhorn_batch, n, 128), dim=-1)
        y = F.normalize(torch.randn(args.sinkhorn_batch, n, 128), dim=-1)
        cost = 1 - x @ y.transpose(1, 2)
        a = torch.rand(args.sinkhorn_batch, n)
        b = torch.rand(args.sinkhorn_batch, n)
        sinkhorn_emd(cost, a, b, 0.05, 10)
        reps = 5
        t0 = time.perf_counter()
        for _ in range(reps):
            sinkhorn_emd(cost, a, b, 0.05, 10)
        rows.append({"grid": f"{g}x{g}", "N": n, "batch": args.sinkhorn_batch, "iters": 10,
                     "ms": (time.perf_counter() - t0) / reps * 1000})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--size", default="nano")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--small-views", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sinkhorn-batch", type=int, default=64)
    ap.add_argument("--sinkhorn-only", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(peak_memory(args.one, args)))
        return
    if not args.sinkhorn_only:
        methods = args.methods.split(",")
        mem = {}
        for m in methods:
            cmd = [sys.executable, __file__, "--one", m, "--size", args.size, "--batch", str(args.batch), "--crop",
                   str(args.crop), "--small-views", str(args.small_views), "--threads", str(args.threads),
                   "--device", args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            mem[m] = json.loads(out)
        times = step_times(methods, args)
        b_t, b_m = times.get("byol"), mem.get("byol", {}).get("peak_mb")
        print(f"batch {args.batch}, crop {args.crop}, small views {args.small_views}, {args.size}, {args.device}, "
              f"threads {args.threads}, median of {args.steps} steps (interleaved)")
        print(f"{'method':16s} {'step s':>8s} {'x BYOL':>7s} {'peak MB':>8s} {'x BYOL':>7s} crops/sample")
        rows = []
        for m in methods:
            rt = times[m] / b_t if b_t else float("nan")
            rm = mem[m]["peak_mb"] / b_m if b_m else float("nan")
            print(f"{m:16s} {times[m]:8.3f} {rt:7.2f} {mem[m]['peak_mb']:8.0f} {rm:7.2f} {mem[m]['crops_per_sample']}")
            rows.append({"method": m, "step_s": times[m], "x_byol": rt, **mem[m]})
        print(json.dumps(rows))
    print("sinkhorn_emd, log domain, eps 0.05, 10 iterations, N = M:")
    for r in sinkhorn_table(args):
        print(f"  {r['grid']:6s} N={r['N']:4d}  batch {r['batch']}  {r['ms']:8.2f} ms")


if __name__ == "__main__":
    main()
