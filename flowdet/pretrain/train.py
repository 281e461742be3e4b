"""The pretraining loop shared by every method: ``pretrain(cfg) -> summary``.

Per epoch it writes, atomically, ``last.pt`` (method weights incl. the BYOL target, optimizer, AMP
scaler, iteration, per-rank RNG states, config) and ``backbone.pt``; appends ``metrics.csv`` and
redraws ``loss.png``. ``train.resume`` continues from ``last.pt`` exactly: the data of an epoch is a
pure function of (seed, epoch, sample index) and the RNG states are restored. Launched by
``torchrun`` it runs DDP (NCCL on GPU, gloo on CPU); only rank 0 writes.

``backbone.pt`` = {"model_size", "state_dict" (keys exactly ``build_backbone(size).state_dict()``),
"method", "config", "flowdet_version"} — what ``flowdet train --backbone`` loads.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from flowdet import __version__, log
from flowdet.config import save_config, to_dict
from flowdet.engine import dist
from flowdet.engine.checkpoint import (
    load_checkpoint,
    remove_stale_temps,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    unwrap,
)
from flowdet.engine.logger import MetricsLog
from flowdet.engine.schedule import WarmupCosine, param_groups, set_lr
from flowdet.errors import FlowdetError, ModelFileError
from flowdet.mine.frames import FrameStore, resolve_frames
from flowdet.models.yolox import build_backbone
from flowdet.pretrain.config import PretrainConfig, validate
from flowdet.pretrain.datasets import FrameDataset, epoch_indices
from flowdet.pretrain.registry import get_method
from flowdet.utils import atomic_write_json


def build_method(cfg: PretrainConfig, backbone: nn.Module | None = None) -> nn.Module:
    """The method module (backbone + heads + loss) registered as ``cfg.method.name``."""
    backbone = backbone if backbone is not None else build_backbone(cfg.model.size)
    return get_method(cfg.method.name).build(backbone, cfg.method)


def build_datasets(cfg: PretrainConfig) -> tuple[Any, Any, dict]:
    """(train dataset, held-out dataset or None, data info for the summary): the method's own
    ``data``, or its ``sampler`` over the (leakage-guarded) frames in its ``dataset``."""
    spec, d = get_method(cfg.method.name), cfg.data
    if spec.data is not None:
        return spec.data(cfg)
    from flowdet.mine.leakage import guard_frames

    paths = guard_frames(resolve_frames(d.frames), d.exclude, d.exclude_action, d.exclude_near)
    store = FrameStore(paths, d.frame_size, d.cache)
    dataset = spec.dataset or FrameDataset
    return dataset(store, spec.sampler(cfg.method, cfg.aug), cfg.train.seed, d.samples_per_frame), None, \
        {"frames": len(paths)}


def _loader(ds, keys: list[tuple[int, int]], batch: int, workers: int) -> DataLoader:
    return DataLoader(ds, batch_size=batch, sampler=keys, drop_last=True, num_workers=workers,
                      persistent_workers=False, pin_memory=torch.cuda.is_available())


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate_fg_bg(model: nn.Module, ds, batch: int, device: torch.device) -> dict[str, float]:
    """Held-out fg/bg accuracy of the center-loss classifier (eval mode, all valid patches)."""
    was = model.training
    model.eval()
    fc = ft = bc = bt = 0
    keys = [(0, i) for i in range(len(ds))]
    for b in DataLoader(ds, batch_size=batch, sampler=keys):
        a, b_, c, d = model.count_correct(_to(b, device))
        fc, ft, bc, bt = fc + a, ft + b_, bc + c, bt + d
    model.train(was)
    acc = (fc + bc) / max(1, ft + bt)
    return {"val_acc": acc, "val_fg_acc": fc / max(1, ft), "val_bg_acc": bc / max(1, bt), "val_patches": ft + bt}


def backbone_payload(model: nn.Module, cfg: PretrainConfig) -> dict[str, Any]:
    sd = {k: v.detach().cpu().clone() for k, v in unwrap(model).backbone.state_dict().items()}
    return {"model_size": cfg.model.size, "state_dict": sd, "method": cfg.method.name, "config": to_dict(cfg),
            "flowdet_version": __version__}


def pretrain(cfg: PretrainConfig, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
    """Pretrain the detector's backbone with ``cfg.method.name``; returns the run summary
    (``backbone`` path, ``final_loss``, per-epoch rows, and for center-loss ``val_acc``).

    ``on_epoch_end(epoch, row)`` is called on every rank after each epoch's checkpoint (tests use it
    to interrupt a run)."""
    cfg = validate(cfg)
    t_cfg = cfg.train
    if t_cfg.threads > 0:
        torch.set_num_threads(t_cfg.threads)
    out = Path(t_cfg.out)
    from flowdet.core import validate as checks

    checks.writable_dir(out, "train.out")  # before any data is read: a wrong --out costs nothing
    device = dist.init_from_env(t_cfg.device)
    rank, world = dist.rank(), dist.world_size()
    seed_everything(t_cfg.seed)
    train_ds, val_ds, data_info = build_datasets(cfg)
    model = build_method(cfg).to(device)
    opt_groups = param_groups(model, t_cfg.weight_decay)
    optimizer: torch.optim.Optimizer = (torch.optim.SGD(opt_groups, lr=t_cfg.lr, momentum=0.9, nesterov=True)
                                        if t_cfg.optimizer == "sgd" else torch.optim.AdamW(opt_groups, lr=t_cfg.lr))
    per_rank = max(-(-len(train_ds) // world), t_cfg.batch)
    steps = per_rank // t_cfg.batch
    steps = min(steps, t_cfg.max_steps) if t_cfg.max_steps > 0 else steps
    total = steps * t_cfg.epochs
    sched = WarmupCosine(t_cfg.lr, total, int(t_cfg.warmup_epochs * steps), min_ratio=t_cfg.min_lr_ratio)
    use_amp = t_cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    metrics = MetricsLog(out / "metrics.csv")
    start_epoch = 0
    if t_cfg.resume:
        start_epoch = _resume(out / "last.pt", cfg, model, optimizer, scaler)
    elif dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.csv").unlink(missing_ok=True)
    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        for f in remove_stale_temps(out, ("last.pt", "backbone.pt", "config.yaml", "summary.json", "split.json")):
            log.info(f"removed {f}, left by an interrupted checkpoint write")
        save_config(cfg, out / "config.yaml")
        if "val_image_ids" in data_info:  # the by-image split, for the record
            atomic_write_json(out / "split.json", {"val_image_ids": data_info["val_image_ids"]})
    ddp_model = model
    if dist.is_distributed():
        ids = [device.index] if device.type == "cuda" else None
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else nullcontext
    t_start, last_row = time.perf_counter(), {}
    for epoch in range(start_epoch, t_cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        keys = [(epoch, i) for i in epoch_indices(len(train_ds), epoch, t_cfg.seed, rank, world)]
        keys = (keys * math.ceil(t_cfg.batch / max(1, len(keys))))[: max(len(keys), t_cfg.batch)]
        sums: dict[str, float] = {}
        bar = _progress(steps, f"{cfg.method.name} {epoch + 1}/{t_cfg.epochs}", dist.is_main())
        for step, batch in enumerate(_loader(train_ds, keys, t_cfg.batch, cfg.data.num_workers)):
            if step >= steps:
                break
            it = epoch * steps + step
            set_lr(optimizer, sched(it))
            with autocast():
                outs = ddp_model(_to(batch, device))
            loss = outs["loss"]
            if not torch.isfinite(loss):
                raise FlowdetError(f"{cfg.method.name}: loss is {loss.item()} at epoch {epoch} step {step} "
                                   f"(try a lower train.lr)")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t_cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), t_cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if hasattr(model, "after_step"):
                model.after_step(it + 1, total)
            for k, v in outs.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        row: dict[str, Any] = {"epoch": epoch + 1}  # 1-based, as the console line and the bar
        for k, v in sums.items():
            row[k] = float(dist.all_reduce_mean(torch.tensor(v / max(1, steps), device=device)))
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["seconds"] = time.perf_counter() - t0
        if val_ds is not None and dist.is_main():
            row.update(evaluate_fg_bg(model, val_ds, t_cfg.batch, device))
        rngs = _gather_rng()
        if dist.is_main():
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scaler": scaler.state_dict(), "epoch": epoch, "iteration": (epoch + 1) * steps,
                             "rng": rngs, "world_size": world, "method": cfg.method.name,
                             "model_size": cfg.model.size, "config": to_dict(cfg), "flowdet_version": __version__},
                            out / "last.pt")
            save_checkpoint(backbone_payload(model, cfg), out / "backbone.pt")
            _log_epoch(metrics, row, out, cfg)
        last_row = row
        dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    summary = _summary(cfg, out, steps, last_row, time.perf_counter() - t_start, device, data_info)
    if dist.is_main():
        atomic_write_json(out / "summary.json", summary, indent=1)
    return summary


def _resume(ckpt_path: Path, cfg: PretrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler) -> int:
    """Weights, optimizer, scaler and this rank's RNG state from ``last.pt``; the epoch to start at. A
    missing file, another method or size, or a checkpoint that does not fit is one line."""
    if not ckpt_path.is_file():
        raise ModelFileError(f"{ckpt_path}: nothing to resume (train.resume is set)")
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    if ckpt.get("method") != cfg.method.name or ckpt.get("model_size") != cfg.model.size:
        raise ModelFileError(f"{ckpt_path}: was {ckpt.get('method')}/{ckpt.get('model_size')}, "
                             f"config asks {cfg.method.name}/{cfg.model.size}")
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        states = ckpt["rng"]
        set_rng_state(states[dist.rank()] if ckpt.get("world_size") == dist.world_size() else states[0])
        return int(ckpt["epoch"]) + 1
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise ModelFileError(f"not a resumable pretraining checkpoint ({type(e).__name__}: {first})",
                             path=ckpt_path) from None


def _log_epoch(metrics: MetricsLog, row: dict[str, Any], out: Path, cfg: PretrainConfig) -> None:
    """The epoch's metrics.csv row, loss.png, and one clean line (the bar is terminal-only: ``pretrain >
    log`` shows every epoch)."""
    metrics.append(row)
    metrics.plot(out / "loss.png", keys=[k for k in row if k in ("loss", "emd", "vector", "ce", "val_acc", "acc")],
                 title=f"pretrain {cfg.method.name}")
    log.info(f"{cfg.method.name} epoch {row['epoch']}/{cfg.train.epochs}: " + " ".join(
        f"{k} {v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)))


def _summary(cfg: PretrainConfig, out: Path, steps: int, last_row: dict[str, Any], seconds: float,
             device: torch.device, data_info: dict[str, Any]) -> dict[str, Any]:
    """The run summary (summary.json): where the backbone is, the final loss (from metrics.csv when this
    process ran no epoch: a resumed, finished run), the held-out accuracy of center-loss."""
    summary = {"method": cfg.method.name, "model_size": cfg.model.size, "out": str(out),
               "backbone": str(out / "backbone.pt"), "epochs": cfg.train.epochs, "steps_per_epoch": steps,
               "final_loss": float(last_row["loss"]) if "loss" in last_row else _last_loss(out),
               "seconds": seconds, "device": str(device), "world_size": dist.world_size(), **data_info}
    for k in ("val_acc", "val_fg_acc", "val_bg_acc", "val_patches"):
        if k in last_row:
            summary[k] = last_row[k]
    summary.pop("val_image_ids", None)
    return summary


def _last_loss(out: Path) -> float | None:
    rows = MetricsLog(out / "metrics.csv").rows()
    return float(rows[-1]["loss"]) if rows else None


def _gather_rng() -> list[dict]:
    state = rng_state()
    if not dist.is_distributed():
        return [state]
    import torch.distributed as tdist

    states: list[Any] = [None] * dist.world_size()
    tdist.all_gather_object(states, state)
    return states


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=None if enabled else True)
