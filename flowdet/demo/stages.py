"""The demo's stages, each one call of the Python API its CLI verb calls, on the folders of one run
(:class:`DemoRun`); each returns the JSON-safe numbers ``state.json`` keeps for the report. Run in
order by :func:`flowdet.demo.pipeline.run_demo`, which skips a stage already finished."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowdet import log
from flowdet.errors import FlowdetError


@dataclass(frozen=True)
class DemoRun:
    """One demo run: where it writes, its budget (a ``DemoPlan``) and its settings."""

    out: Path
    plan: Any
    method: str
    seed: int
    device: str

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def train_dir(self) -> Path:
        return self.data / "train"

    @property
    def val_dir(self) -> Path:
        return self.data / "val"

    @property
    def video_dir(self) -> Path:
        return self.data / "video"


def eval_interval(plan: Any) -> int:
    """About six evaluations over training (each ~1–3 s on the demo's val set): the AP-per-epoch curve."""
    return max(1, plan.epochs // 6)


def synthesize(r: DemoRun) -> dict[str, Any]:
    from flowdet.data.synth import SynthConfig, generate
    from flowdet.data.synth_video import render_video

    plan, seed = r.plan, r.seed
    common = dict(width=plan.width, height=plan.height, min_size=plan.min_size, max_size=plan.max_size)
    tr = generate(r.train_dir, SynthConfig(num_images=plan.train_images, seed=seed, **common), progress=True)
    va = generate(r.val_dir, SynthConfig(num_images=plan.val_images, seed=seed + 1, **common), progress=True)
    vi = render_video(r.video_dir, SynthConfig(num_images=0, seed=seed + 2, video_seconds=plan.video_seconds,
                                               fps=plan.video_fps, **common), progress=True)
    return {"train": scalars(tr), "val": scalars(va), "video": scalars(vi),
            "video_path": str(_find(r.video_dir, "*.mp4"))}


def mine_frames(r: DemoRun, syn: dict[str, Any]) -> dict[str, Any]:
    from flowdet.mine.miner import mine

    return scalars(mine([syn["video_path"]], r.data / "frames", every=1, dedupe=0.01, progress=True))


def pretrain_backbone(r: DemoRun) -> dict[str, Any]:
    from flowdet.config import load_config
    from flowdet.pretrain.config import PretrainConfig
    from flowdet.pretrain.train import pretrain

    plan, method = r.plan, r.method
    sets = [f"method.name={method}", "model.size=nano", f"train.epochs={plan.pretrain_epochs}",
            f"train.max_steps={plan.pretrain_steps}", "train.batch=8", f"train.seed={r.seed}",
            f"train.device={r.device}", f"train.out={r.runs / 'pretrain'}", f"data.frame_size={plan.img_size}"]
    if method == "center-loss":
        sets += [f"data.ann={r.train_dir / 'annotations.json'}", f"data.images={r.train_dir / 'images'}"]
    else:
        sets += [f"data.frames=[{r.data / 'frames'}, {r.train_dir / 'images'}]"]
    res = pretrain(load_config(PretrainConfig, f"pretrain_{method.replace('-', '_')}", sets))
    keep = scalars(res)
    keep["backbone"] = str(res["backbone"])
    return keep


def train_detector(r: DemoRun, pre: dict[str, Any]) -> dict[str, Any]:
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig
    from flowdet.detect.train import train

    plan, train_dir, val_dir = r.plan, r.train_dir, r.val_dir
    sets = [f"out={r.runs / 'train'}", f"data.train={train_dir / 'annotations.json'}", f"data.images={train_dir / 'images'}",
            f"data.val={val_dir / 'annotations.json'}", f"data.val_images={val_dir / 'images'}", "data.cache=true",
            "model.size=nano", f"model.backbone={pre['backbone']}", f"train.epochs={plan.epochs}",
            f"train.batch={plan.batch}", f"train.img_size={plan.img_size}", "train.iou_loss=ciou",
            f"train.seed={r.seed}", f"train.device={r.device}", f"train.eval_interval={eval_interval(plan)}",
            "train.warmup_epochs=1", "train.workers=0", f"augment.no_aug_epochs={plan.no_aug_epochs}",
            # short-schedule recipe (see docs/benchmarks.md): higher lr, BN statistics that keep up
            # with the weights, gentle augmentation on tiny objects
            "train.lr=0.02", "train.bn_momentum=0.2", "train.min_lr_ratio=0.5",
            "augment.mosaic_prob=0.5", "augment.mixup_prob=0", "augment.scale=[0.8, 1.25]"]
    res = train(load_config(DetectConfig, None, sets))
    keep = scalars(res)
    keep["best"], keep["last"] = str(res.get("best") or res["last"]), str(res["last"])
    return keep


def evaluate_best(r: DemoRun, tr: dict[str, Any]) -> dict[str, Any]:
    from flowdet.detect.evaluate import evaluate
    from flowdet.detect.torch_predictor import TorchPredictor

    pred = TorchPredictor(tr["best"], img_size=r.plan.img_size, device="cpu")
    return scalars(evaluate(pred, r.val_dir / "annotations.json", r.val_dir / "images", out_dir=r.out / "eval"))


def export_model(r: DemoRun, tr: dict[str, Any]) -> dict[str, Any]:
    from flowdet.export.onnx_export import export_onnx

    res = export_onnx(tr["best"], r.out / "model.onnx", img_size=r.plan.img_size,
                      parity_data=r.val_dir / "annotations.json", log=lambda m: log.info(f"    {m}"))
    rep = res.parity.to_dict() if res.parity is not None else {}
    return {"onnx_seconds": res.seconds, **{f"parity_{k}": v for k, v in scalars(rep).items()}}


def stream_video(r: DemoRun, syn: dict[str, Any]) -> dict[str, Any]:
    from flowdet.runtime.stream.stream import run_stream

    s = run_stream(str(r.out / "model.onnx"), syn["video_path"], out=r.out / "annotated.mp4",
                   jsonl=r.out / "detections.jsonl", conf=0.3, threads=2)
    return _stream_numbers(s)


def report_assets(r: DemoRun, syn: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    """The report's figures and tables from the run's artifacts (dataset stats, curves, the prediction
    grid, AP per epoch, a stream frame); written beside them, named relative to ``out``."""
    from flowdet.data.stats import dataset_stats
    from flowdet.demo.grid import deployment_conf, prediction_grid
    from flowdet.demo.sections import ap_per_epoch, plot_ap_per_epoch, size_rows, stream_frame
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    out, plan, train_dir, val_dir, runs = r.out, r.plan, r.train_dir, r.val_dir, r.runs
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


def scalars(d: dict[str, Any]) -> dict[str, Any]:
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
