"""Where a semi-supervised training step's time goes, beside a supervised step measured the same way.

Builds the real Trainer (``flowdet train --unlabeled``'s objects: cached labeled set, unlabeled
frames, EMA, teacher) on Grogol-960 — train.json labeled, val.json's images unlabeled, as the
new-camera protocol does — and runs supervised and semi steps interleaved (the box may be loaded by
other work: interleaving exposes both to the same load), timing each part of the step as
flowdet.detect.trainer runs it. Medians over ``--rounds`` of wall and thread-CPU seconds.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/semi_step.py --rounds 8

Parts of a semi step: data_lab (labeled batch), data_unl (weak + strong unlabeled views),
student_fwd (labeled + strong in one pass), simota (supervised loss on the labeled part), teacher_fwd
(weak view, no grad), unl_loss (Dense-Teacher loss), pseudo (pseudo-box count: decode + NMS),
backward, opt_ema (optimizer + training EMA), teacher_ema,
book (the per-step loss bookkeeping).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grogol-960"


def cpu_line() -> str:
    """flowdet's CPU line (model, cores, ISA flags) and the load the timings ran under."""
    from flowdet.export.gate import describe_cpu

    return f"{describe_cpu()}, load {os.getloadavg()[0]:.1f}"


class Timer:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
        self.kind = ""

    @contextmanager
    def part(self, name: str):
        w0, c0 = time.perf_counter(), time.thread_time()
        yield
        self.rows[self.kind][name].append((time.perf_counter() - w0, time.thread_time() - c0))


def build(args: argparse.Namespace):
    import torch

    from flowdet.config import apply_overrides
    from flowdet.detect.config import DetectConfig, resolve_schedule
    from flowdet.detect.trainer import Trainer

    out = tempfile.mkdtemp(prefix="semi_step_")
    cfg = apply_overrides(DetectConfig(), [
        f"out={out}", f"data.train={args.ann}", f"data.images={args.images}", "data.cache=true",
        f"model.size={args.size}", f"train.img_size={args.img}", f"train.batch={args.batch}",
        "train.workers=0", "train.seed=0", "train.epochs=30", "train.progress=false",
        f"semi.unlabeled=[{args.unlabeled}]", "semi.burn_in_epochs=0"])
    cfg, _ = resolve_schedule(cfg)
    tr = Trainer(cfg, torch.device("cpu"))
    tr.model.train()
    return tr


def batches(loader, epoch0: int = 0):
    epoch = epoch0
    while True:
        loader.batch_sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def step(tr, lab, unl, T: Timer, semi: bool) -> None:
    """One training step as Trainer.train_epoch runs it, part by part (keep in step with it)."""
    import torch

    from flowdet.detect.semi import step_sums

    model, opt = tr.model, tr.optimizer
    with T.part("data_lab"):
        imgs, targets, info = next(lab)
        imgs = imgs.contiguous(memory_format=torch.channels_last) if tr.channels_last else imgs
    n_lab = imgs.shape[0]
    if semi:
        with T.part("data_unl"):
            weak, strong = tr.semi.prepare(next(unl))
    with T.part("student_fwd"):
        levels = model(torch.cat([imgs, strong]) if semi else imgs)
    with T.part("simota"):
        out = tr.loss_fn([x[:n_lab] for x in levels], targets)
        loss = out["total"]
    if semi:
        with T.part("teacher_fwd"):
            t_levels = tr.semi.teacher_forward(weak)
        with T.part("unl_loss"):
            u = tr.semi.loss_fn([x[n_lab:] for x in levels], t_levels)
            loss = loss + tr.semi.cfg.weight * u["total"]
        with T.part("pseudo"):
            u["pseudo"] = tr.semi.count_pseudo(t_levels)
    with T.part("backward"):
        opt.zero_grad(set_to_none=True)
        loss.backward()
    with T.part("opt_ema"):
        opt.step()
        tr.ema.update(model)
    if semi:
        with T.part("teacher_ema"):
            tr.semi.update(model)
    with T.part("book"):
        [float(out[k]) for k in ("iou", "obj", "cls", "l1")] + [float(out["total"].detach())]
        if semi:
            step_sums(u, weak.shape[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="nano-d")
    ap.add_argument("--img", default="832x480")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=8, help="measured (supervised, semi) pairs")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ann", type=Path, default=DATA / "train.json")
    ap.add_argument("--images", type=Path, default=DATA / "images")
    ap.add_argument("--unlabeled", type=Path, default=DATA / "val.json")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    print(cpu_line())
    print(f"torch {torch.__version__}, 1 thread; {args.size} at {args.img}, batch {args.batch} + {args.batch} unlabeled")
    t0 = time.perf_counter()
    tr = build(args)
    teacher_start = tr.ema.ema
    unl = tr.semi.batches(0, teacher_start)
    lab = batches(tr.loader)
    ds = tr.semi.dataset
    if getattr(ds, "cache_bytes", 0):  # steady state: after the first semi epoch every frame is cached
        for i in range(len(ds)):
            ds.letterboxed(i, *tr.hw)
    print(f"setup {time.perf_counter() - t0:.1f} s (labeled cache decoded; unlabeled cache "
          f"{getattr(ds, 'cached_bytes', 0) / 2**20:.0f} MiB)")
    T = Timer()
    for r in range(args.warmup + args.rounds):
        for semi in (False, True):
            T.kind = ("semi" if semi else "sup") if r >= args.warmup else "warm"
            w0 = time.perf_counter()
            with T.part("total"):
                step(tr, lab, unl, T, semi)
            if r < args.warmup:
                print(f"warm-up {'semi' if semi else 'sup'} step {time.perf_counter() - w0:.1f} s")

    parts = ["data_lab", "data_unl", "student_fwd", "simota", "teacher_fwd", "unl_loss", "pseudo", "backward",
             "opt_ema", "teacher_ema", "book", "total"]
    print(f"\nmedian seconds over {args.rounds} interleaved rounds (wall / thread CPU); "
          "wall is inflated by the load; CPU is the comparable number")
    print("| part | supervised wall | supervised cpu | semi wall | semi cpu |\n|---|---|---|---|---|")
    for p in parts:
        cells = []
        for kind in ("sup", "semi"):
            v = T.rows[kind].get(p)
            cells += [f"{np.median([a for a, _ in v]):.3f}", f"{np.median([b for _, b in v]):.3f}"] if v else ["—", "—"]
        print(f"| {p} | " + " | ".join(cells) + " |")
    sup = np.median([b for _, b in T.rows["sup"]["total"]])
    semi = np.median([b for _, b in T.rows["semi"]["total"]])
    print(f"\nsemi / supervised (thread CPU, medians): {semi / sup:.2f}×")


if __name__ == "__main__":
    main()
