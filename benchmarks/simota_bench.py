"""SimOTA time per image against the number of boxes, at a 640 px input (8400 anchors).

    .venv/bin/python benchmarks/simota_bench.py [--threads 1] [--repeats 30] [--device cpu]

Scenes imitate FloW: mostly tiny boxes (4–40 px, log-uniform sides) spread over the image; the
predictions are a mid-training head (anchor-centred boxes of 2–6 strides, jittered) with random
joint scores. Reports the median and 90th percentile over repeats (after warm-up), plus the number
of positives and of "missed" positives (IoU 0 with their box).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from flowdet.detect.simota import simota_assign
from flowdet.models.head import make_grids

STRIDES = (8, 16, 32)


def make_scene(num_boxes: int, size: int, seed: int, device: torch.device):
    g = torch.Generator().manual_seed(seed)
    levels = [torch.zeros(1, 1, size // s, size // s) for s in STRIDES]
    cells, strides = make_grids(levels, STRIDES)
    centres = (cells + 0.5) * strides[:, None]
    n = centres.shape[0]
    side = strides[:, None] * (2 + 4 * torch.rand(n, 2, generator=g))
    pred = torch.cat([centres + strides[:, None] * torch.randn(n, 2, generator=g) * 0.3, side], 1)
    scores = torch.rand(n, 1, generator=g) * 0.3
    wh = torch.exp(torch.empty(num_boxes, 2).uniform_(math.log(4), math.log(40), generator=g))
    xy = torch.rand(num_boxes, 2, generator=g) * (size - wh)
    gt = torch.cat([xy, xy + wh], 1)
    cls = torch.zeros(num_boxes, dtype=torch.long)
    return [t.to(device) for t in (pred, scores, centres, strides, gt, cls)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(num_boxes: int, size: int, repeats: int, device: torch.device) -> dict:
    times, fg, miss = [], [], []
    for r in range(repeats + 3):
        pred, scores, centres, strides, gt, cls = make_scene(num_boxes, size, seed=r, device=device)
        sync(device)
        t0 = time.perf_counter()
        a = simota_assign(pred, scores, centres, strides, gt, cls)
        sync(device)
        if r >= 3:  # warm-up
            times.append(time.perf_counter() - t0)
            fg.append(a.num_fg)
            miss.append(int((a.matched_iou == 0).sum()))
    times.sort()
    return {"boxes": num_boxes, "median_ms": 1e3 * statistics.median(times),
            "p90_ms": 1e3 * times[min(len(times) - 1, int(0.9 * len(times)))],
            "fg": statistics.mean(fg), "miss": statistics.mean(miss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, nargs="+", default=[1, 5, 10, 25, 50, 100])
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = sum((args.size // s) ** 2 for s in STRIDES)
    print(f"SimOTA per image: {args.size}x{args.size} input, {n} anchors, device {device}, "
          f"{args.threads} thread(s), torch {torch.__version__}, median of {args.repeats}")
    print(f"{'boxes':>6} {'median ms':>10} {'p90 ms':>8} {'positives':>10} {'missed':>7}")
    for b in args.boxes:
        r = bench(b, args.size, args.repeats, device)
        print(f"{r['boxes']:>6} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['fg']:>10.1f} {r['miss']:>7.1f}")


if __name__ == "__main__":
    main()
