"""(c) every 4th frame vs every frame, over several corruption seeds: how much skipping frames changes the
count, for flowdet's ByteTracker (and optionally the same tracker with some options changed, e.g. the
stage-4 re-find and exit confirmation off). One corruption seed moves a small video's count by 10-50 %,
so a single row is not a result; this reports the mean and the range over ``--seeds``.

Inputs per video (``flowdet synth --video`` folders): its true boxes "clean" (2 % jitter) and "noisy"
(5 % jitter, 30 % dropped, 5 % false boxes), and with ``--model`` the detector's boxes (end to end,
detections cached beside the video as ``dets_<model stem>.npz``).

    python benchmarks/count_stride.py runs/c17/synth_video runs/c17/synth_dense_video --seeds 2,3,4,5,6 \\
        [--model runs/c17/count_model_nanod.onnx] [--compare recover_radius=0,exit_confirm=false]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from count_bench import detect_video, load_video_gt, run_tracker, score  # noqa: E402

from flowdet.runtime.track.simulation import corrupt  # noqa: E402
from flowdet.runtime.track.tracker import ByteTracker  # noqa: E402

CASES = {"clean": dict(jitter=0.02), "noisy": dict(jitter=0.05, drop=0.3, false_rate=0.05)}
COLS = ("count", "correct", "redundant", "false", "missed")


def _parse_options(text: str) -> dict:
    """``"recover_radius=0,exit_confirm=false"`` → tracker options (values as YAML scalars)."""
    return {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in text.split(",") if item)}


def both_strides(dets: list, gt: list, fps: float, size: tuple[int, int], options: dict, n_init: int) -> dict:
    """Counts and decomposition every frame and every 4th frame; ``count`` = ids handed out (what a user sees)."""
    out = {}
    for stride in (1, 4):
        res = run_tracker(ByteTracker(**options), dets, fps, stride, None, size)
        r = score(gt, res, fps, stride, n_init)
        out[stride] = {"count": len(res["count_times"]), **{k: r[k] for k in COLS[1:]}, "IDF1": r["IDF1"]}
    out["change"] = 100.0 * (out[4]["count"] - out[1]["count"]) / max(1, out[1]["count"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path, help="`flowdet synth --video` output folders")
    ap.add_argument("--seeds", default="2,3,4,5,6", help="corruption seeds for the noisy input")
    ap.add_argument("--model", default=None, help="model.onnx: also end to end")
    ap.add_argument("--compare", default="", help="tracker options of a second row, e.g. recover_radius=0,exit_confirm=false")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = {"default": {}} | ({f"[{args.compare}]": _parse_options(args.compare)} if args.compare else {})
    n_init = ByteTracker().cfg.n_init
    print(f"{'video':22s} {'input':6s} {'tracker':36s} | change % mean [min, max] | every frame / every 4th: "
          + ", ".join(COLS) + " (means)")
    for vd in args.videos:
        gt, fps, video, size = load_video_gt(vd)
        inputs = {case: [corrupt(gt, seed=s, width=size[0], height=size[1], **kw) for s in (seeds if case == "noisy" else seeds[:1])]
                  for case, kw in CASES.items()}
        if args.model:
            cache = vd / f"dets_{Path(args.model).stem}.npz"
            if cache.exists():
                dets = list(np.load(cache, allow_pickle=True)["dets"])
            else:
                dets = detect_video(args.model, video, threads=1)
                np.savez(cache, dets=np.array(dets, dtype=object))
            inputs["model"] = [dets]
        for case, runs in inputs.items():
            for name, options in configs.items():
                rows = [both_strides(d, gt, fps, size, options, n_init) for d in runs]
                ch = np.array([r["change"] for r in rows])
                cell = lambda s, rows=rows: "/".join(f"{np.mean([r[s][c] for r in rows]):.1f}" for c in COLS)  # noqa: E731
                print(f"{vd.name[:22]:22s} {case:6s} {name[:36]:36s} | {ch.mean():+6.1f} [{ch.min():+6.1f}, {ch.max():+6.1f}] | "
                      f"{cell(1)}  /  {cell(4)}", flush=True)


if __name__ == "__main__":
    main()
