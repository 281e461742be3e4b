"""`flowdet demo`: synthesize → mine → pretrain → train → eval → export → stream → report.

Every stage calls the same Python API as its CLI verb. Stage completion is recorded in
``state.json`` (atomically), so re-running into the same ``--out`` resumes after the last finished
stage; a run with different settings refuses unless ``--force``. All numbers in the report come
from this run (``summary.json``).
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowdet import __version__, log
from flowdet.demo import stages
from flowdet.errors import InputError
from flowdet.utils import atomic_write_json


@dataclass(frozen=True)
class DemoPlan:
    """The demo's budget. ``full`` must fit 10 min on 2 CPU cores, ``quick`` 2 min."""

    train_images: int
    val_images: int
    width: int
    height: int
    video_seconds: float
    video_fps: float
    pretrain_epochs: int
    pretrain_steps: int
    epochs: int
    no_aug_epochs: int
    batch: int
    img_size: int
    min_size: float
    max_size: float


PLANS = {
    # Scenes at the detector's input scale (416 px wide, no downscaling) so 12–30 px objects stay
    # 12–30 px: nano learns them within the CPU budget (measured: AP50 0.41 after 20 epochs).
    "full": DemoPlan(train_images=96, val_images=24, width=416, height=256, video_seconds=12, video_fps=5,
                     pretrain_epochs=2, pretrain_steps=15, epochs=36, no_aug_epochs=6, batch=8, img_size=416,
                     min_size=12, max_size=30),
    "quick": DemoPlan(train_images=16, val_images=6, width=320, height=192, video_seconds=3, video_fps=5,
                      pretrain_epochs=1, pretrain_steps=3, epochs=3, no_aug_epochs=1, batch=8, img_size=320,
                      min_size=12, max_size=28),
}
STAGES = ["synthesize", "mine", "pretrain", "train", "eval", "export", "stream", "report"]


def _headline(i: int, name: str, what: str) -> None:
    log.heading(f"[{i}/{len(STAGES)}] {name}: {what}")


class _State:
    """state.json: settings + finished stages with their results (atomic writes)."""

    def __init__(self, out: Path, settings: dict[str, Any], force: bool):
        self.path = out / "state.json"
        if force and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"settings": settings, "stages": {}}
        if self.data.get("settings") != settings:
            raise InputError(
                f"{out} holds a demo run with other settings ({self.data.get('settings')}); "
                "use another --out or --force to overwrite it")
        if not self.path.exists():
            self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data, indent=1)

    def done(self, stage: str) -> dict[str, Any] | None:
        return self.data["stages"].get(stage)

    def finish(self, stage: str, result: dict[str, Any]) -> None:
        self.data["stages"][stage] = result
        self.save()


def run_demo(out: str | Path, quick: bool = False, method: str = "self-emd", seed: int = 0,
             force: bool = False, device: str = "auto") -> dict[str, Any]:
    """Run the whole pipeline into ``out``; returns the summary (also written as summary.json)."""
    import numpy as np  # noqa: F401  (fail early with a clear message if the core is broken)

    from flowdet.utils import require

    require("torch")
    out = Path(out)
    mode = "quick" if quick else "full"
    plan = PLANS[mode]
    state = _State(out, {"mode": mode, "method": method, "seed": seed}, force)
    t_start = time.perf_counter()

    def stage(i: int, name: str, what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        _headline(i, name, what)
        prev = state.done(name)
        if prev is not None:
            log.info(f"    already done in {out} ({prev.get('seconds', 0):.1f} s) — skipped")
            return prev
        t0 = time.perf_counter()
        res = fn()
        res["seconds"] = time.perf_counter() - t0
        state.finish(name, res)
        return res

    r = stages.DemoRun(out, plan, method, seed, device)
    syn = stage(1, "synthesize", f"{plan.train_images}+{plan.val_images} FloW-like scenes "
                f"{plan.width}x{plan.height} and a {plan.video_seconds:g} s video", lambda: stages.synthesize(r))
    mined = stage(2, "mine", "frames from the unlabeled video (de-duplicated)", lambda: stages.mine_frames(r, syn))
    pre = stage(3, "pretrain", f"{method} on mined frames + unlabeled train images (nano backbone)",
                lambda: stages.pretrain_backbone(r))
    tr = stage(4, "train", f"nano detector, {plan.epochs} epochs at {plan.img_size} px, CIoU-SimOTA",
               lambda: stages.train_detector(r, pre))
    ev = stage(5, "eval", "COCO metrics on the synthetic validation set", lambda: stages.evaluate_best(r, tr))
    ex = stage(6, "export", "ONNX with decoded outputs + parity check against PyTorch", lambda: stages.export_model(r, tr))
    so = stage(7, "stream", "the synthetic video through the ONNX runtime (no torch)", lambda: stages.stream_video(r, syn))
    rep = stage(8, "report", "report.md / report.html / summary.json", lambda: stages.report_assets(r, syn, ev))
    from flowdet.demo.report import write_report

    times = {k: round(v.get("seconds", 0.0), 2) for k, v in state.data["stages"].items()}
    summary = {
        "mode": mode, "method": method, "seed": seed, "model_size": "nano", "img_size": plan.img_size,
        "flowdet_version": __version__, "out_dir": str(out),
        "metrics": {k: v for k, v in ev.items() if isinstance(v, (int, float))},
        "stage_seconds": times, "total_seconds": round(sum(times.values()), 2),
        # best_epoch 1-based, like metrics.csv, the console and the AP-per-epoch table (the trainer's is 0-based)
        "train": {**{k: tr[k] for k in ("best_ap", "epochs", "miss_share_first", "miss_share_last") if k in tr},
                  **({"best_epoch": tr["best_epoch"] + 1} if isinstance(tr.get("best_epoch"), int) else {}),
                  "epochs": plan.epochs, "no_aug_epochs": plan.no_aug_epochs},
        "pretrain": {k: v for k, v in pre.items() if isinstance(v, (int, float))},
        "mine": {k: mined[k] for k in ("kept", "dropped", "read") if k in mined},
        "export": {k: v for k, v in ex.items() if isinstance(v, (int, float, bool))},
        "stream": {k: v for k, v in so.items() if isinstance(v, (int, float))}, "dataset": rep["dataset"],
        "assets": rep["assets"], "grid_conf": rep["grid"]["conf"], "eval_interval": stages.eval_interval(plan),
        **{k: rep[k] for k in ("sizes", "ap_per_epoch", "grid", "stream_frame") if k in rep},
        "wall_seconds_this_invocation": round(time.perf_counter() - t_start, 2),
    }
    _, md, _ = write_report(summary, out)
    log.heading(f"report: {md}  (also report.html, summary.json)", style="green")
    return summary
