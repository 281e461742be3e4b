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
from flowdet.errors import FlowdetError, InputError
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

    data, runs = out / "data", out / "runs"
    train_dir, val_dir, video_dir = data / "train", data / "val", data / "video"

    def synthesize() -> dict[str, Any]:
        from flowdet.data.synth import SynthConfig, generate
        from flowdet.data.synth_video import render_video

        common = dict(width=plan.width, height=plan.height, min_size=plan.min_size, max_size=plan.max_size)
        tr = generate(train_dir, SynthConfig(num_images=plan.train_images, seed=seed, **common), progress=True)
        va = generate(val_dir, SynthConfig(num_images=plan.val_images, seed=seed + 1, **common), progress=True)
        vi = render_video(video_dir, SynthConfig(num_images=0, seed=seed + 2, video_seconds=plan.video_seconds,
                                                 fps=plan.video_fps, **common), progress=True)
        return {"train": _scalars(tr), "val": _scalars(va), "video": _scalars(vi),
                "video_path": str(_find(video_dir, "*.mp4"))}

    syn = stage(1, "synthesize", f"{plan.train_images}+{plan.val_images} FloW-like scenes "
                f"{plan.width}x{plan.height} and a {plan.video_seconds:g} s video", synthesize)

    def mine_stage() -> dict[str, Any]:
        from flowdet.mine.miner import mine

        return _scalars(mine([syn["video_path"]], data / "frames", every=1, dedupe=0.01, progress=True))

    mined = stage(2, "mine", "frames from the unlabeled video (de-duplicated)", mine_stage)

    def pretrain_stage() -> dict[str, Any]:
        from flowdet.config import load_config
        from flowdet.pretrain.config import PretrainConfig
        from flowdet.pretrain.train import pretrain

        sets = [f"method.name={method}", "model.size=nano", f"train.epochs={plan.pretrain_epochs}",
                f"train.max_steps={plan.pretrain_steps}", "train.batch=8", f"train.seed={seed}",
                f"train.device={device}", f"train.out={runs / 'pretrain'}", f"data.frame_size={plan.img_size}"]
        if method == "center-loss":
            sets += [f"data.ann={train_dir / 'annotations.json'}", f"data.images={train_dir / 'images'}"]
        else:
            sets += [f"data.frames=[{data / 'frames'}, {train_dir / 'images'}]"]
        res = pretrain(load_config(PretrainConfig, f"pretrain_{method.replace('-', '_')}", sets))
        keep = _scalars(res)
        keep["backbone"] = str(res["backbone"])
        return keep

    pre = stage(3, "pretrain", f"{method} on mined frames + unlabeled train images (nano backbone)", pretrain_stage)

    def train_stage() -> dict[str, Any]:
        from flowdet.config import load_config
        from flowdet.detect.config import DetectConfig
        from flowdet.detect.train import train

        sets = [f"out={runs / 'train'}", f"data.train={train_dir / 'annotations.json'}", f"data.images={train_dir / 'images'}",
                f"data.val={val_dir / 'annotations.json'}", f"data.val_images={val_dir / 'images'}", "data.cache=true",
                "model.size=nano", f"model.backbone={pre['backbone']}", f"train.epochs={plan.epochs}",
                f"train.batch={plan.batch}", f"train.img_size={plan.img_size}", "train.iou_loss=ciou",
                f"train.seed={seed}", f"train.device={device}", f"train.eval_interval={_eval_interval(plan)}",
                "train.warmup_epochs=1", "train.workers=0", f"augment.no_aug_epochs={plan.no_aug_epochs}",
                # short-schedule recipe (see docs/benchmarks.md): higher lr, BN statistics that keep up
                # with the weights, gentle augmentation on tiny objects
                "train.lr=0.02", "train.bn_momentum=0.2", "train.min_lr_ratio=0.5",
                "augment.mosaic_prob=0.5", "augment.mixup_prob=0", "augment.scale=[0.8, 1.25]"]
        res = train(load_config(DetectConfig, None, sets))
        keep = _scalars(res)
        keep["best"], keep["last"] = str(res.get("best") or res["last"]), str(res["last"])
        return keep

    tr = stage(4, "train", f"nano detector, {plan.epochs} epochs at {plan.img_size} px, CIoU-SimOTA", train_stage)

    def eval_stage() -> dict[str, Any]:
        from flowdet.detect.evaluate import evaluate
        from flowdet.detect.torch_predictor import TorchPredictor

        pred = TorchPredictor(tr["best"], img_size=plan.img_size, device="cpu")
        return _scalars(evaluate(pred, val_dir / "annotations.json", val_dir / "images", out_dir=out / "eval"))

    ev = stage(5, "eval", "COCO metrics on the synthetic validation set", eval_stage)

    def export_stage() -> dict[str, Any]:
        from flowdet.export.onnx_export import export_onnx

        res = export_onnx(tr["best"], out / "model.onnx", img_size=plan.img_size,
                          parity_data=val_dir / "annotations.json", log=lambda m: log.info(f"    {m}"))
        rep = res.parity.to_dict() if res.parity is not None else {}
        return {"onnx_seconds": res.seconds, **{f"parity_{k}": v for k, v in _scalars(rep).items()}}

    ex = stage(6, "export", "ONNX with decoded outputs + parity check against PyTorch", export_stage)

    def stream_stage() -> dict[str, Any]:
        from flowdet.runtime.stream.stream import run_stream

        s = run_stream(str(out / "model.onnx"), syn["video_path"], out=out / "annotated.mp4",
                       jsonl=out / "detections.jsonl", conf=0.3, threads=2)
        return _stream_numbers(s)

    so = stage(7, "stream", "the synthetic video through the ONNX runtime (no torch)", stream_stage)

    def report_stage() -> dict[str, Any]:
        from flowdet.data.stats import dataset_stats
        from flowdet.demo.grid import deployment_conf, prediction_grid
        from flowdet.demo.sections import ap_per_epoch, plot_ap_per_epoch, size_rows, stream_frame
        from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

        assets: dict[str, str] = {}
        st = dataset_stats(train_dir / "annotations.json", train_dir / "images", img_size=plan.img_size, out_dir=out)
        st_val = dataset_stats(val_dir / "annotations.json", val_dir / "images", img_size=plan.img_size)
        hist = st.get("histogram_png")
        if hist:
            assets["box_hist"] = _rel(hist, out)
        for key, p in (("train_loss", runs / "train" / "loss.png"), ("pretrain_loss", runs / "pretrain" / "loss.png"),
                       ("pr_curve", out / "eval" / "pr_curve.png")):
            if p.exists():
                assets[key] = _rel(p, out)
        grid = prediction_grid(OnnxPredictor(str(out / "model.onnx")), val_dir / "annotations.json",
                               val_dir / "images", out / "predictions.png", conf=deployment_conf(ev))
        assets["pred_grid"] = _rel(grid.pop("path"), out)
        evals = ap_per_epoch(runs / "train" / "metrics.csv")
        ap_png = plot_ap_per_epoch(evals, out / "ap_per_epoch.png")
        if ap_png:
            assets["ap_per_epoch"] = _rel(ap_png, out)
        frame = stream_frame(syn["video_path"], syn["video"]["video_annotations"], out / "detections.jsonl",
                             out / "stream_frame.png")
        assets["stream_frame"] = _rel(frame.pop("path"), out)
        return {"assets": assets, "dataset": _flat_stats(st), "sizes": size_rows(st, st_val, ev), "ap_per_epoch": evals,
                "grid": grid, "stream_frame": frame}

    rep = stage(8, "report", "report.md / report.html / summary.json", report_stage)
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
        "assets": rep["assets"], "grid_conf": rep["grid"]["conf"], "eval_interval": _eval_interval(plan),
        **{k: rep[k] for k in ("sizes", "ap_per_epoch", "grid", "stream_frame") if k in rep},
        "wall_seconds_this_invocation": round(time.perf_counter() - t_start, 2),
    }
    _, md, _ = write_report(summary, out)
    log.heading(f"report: {md}  (also report.html, summary.json)", style="green")
    return summary


def _eval_interval(plan: DemoPlan) -> int:
    """About six evaluations over training (each ~1–3 s on the demo's val set): the AP-per-epoch curve."""
    return max(1, plan.epochs // 6)


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe scalars (and short lists) of a stage result."""
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _flat_stats(st: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in st.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
        elif isinstance(v, dict) and k not in ("native", "resized"):  # size buckets: the report's size table
            for k2, v2 in v.items():
                if isinstance(v2, (int, float)) and not isinstance(v2, bool):
                    out[f"{k}.{k2}"] = v2
    return out


def _stream_numbers(s: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    lat = s.get("latency_ms")
    if isinstance(lat, dict):
        out.update({f"latency_{k}_ms": v for k, v in lat.items() if isinstance(v, (int, float))})
    return out


def _find(folder: Path, pattern: str) -> Path:
    hits = sorted(Path(folder).glob(pattern))
    if not hits:
        raise FlowdetError(f"{folder}: no {pattern} produced")
    return hits[0]


def _rel(p: str | Path, base: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)
