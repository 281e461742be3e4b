"""`flowdet train` as a Python API: ``train(cfg)`` and ``load_backbone(model, path)``.

The loop itself lives in flowdet.detect.trainer; this module resolves the device / process group,
the checkpoint to resume from, and turns Ctrl-C into a clean exit that says how to resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click
import torch
from torch import nn

from flowdet.detect.config import DetectConfig, validate
from flowdet.engine import dist


def load_backbone(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a ``backbone.pt`` (from `flowdet pretrain`) into ``model.backbone``.

    Returns {"path", "method", "loaded", "missing", "unexpected", "shape_mismatch"}. Raises
    ClickException (exit 2) when the file is unreadable or not a backbone artifact, the model size
    differs, or no key matches."""
    from flowdet.engine.checkpoint import load_checkpoint

    p = Path(path)
    art = load_checkpoint(p)
    if not isinstance(art, dict) or not isinstance(art.get("state_dict"), dict):
        raise click.ClickException(f"{p}: not a flowdet backbone artifact (no 'state_dict'; made by `flowdet pretrain`)")
    size = getattr(model, "size", None)
    if art.get("model_size") is not None and size is not None and art["model_size"] != size:
        raise click.ClickException(f"{p}: backbone is for model size '{art['model_size']}', "
                                   f"this model is '{size}' (set --size {art['model_size']})")
    own = model.backbone.state_dict()
    # Accept a full detector state_dict too: keys under "backbone." are the backbone's.
    src = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in art["state_dict"].items()}
    matched = {k: v for k, v in src.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    report = {
        "path": str(p), "method": art.get("method"), "loaded": len(matched),
        "missing": sorted(k for k in own if k not in matched),
        "unexpected": sorted(k for k in src if k not in own),
        "shape_mismatch": sorted(k for k in src if k in own and tuple(src[k].shape) != tuple(own[k].shape)),
    }
    if not matched:
        raise click.ClickException(f"{p}: no key matches the {size} backbone "
                                   f"({len(report['unexpected'])} unexpected, {len(report['shape_mismatch'])} shape mismatches)")
    model.backbone.load_state_dict(matched, strict=False)
    if dist.is_main():
        click.echo(f"backbone: loaded {len(matched)}/{len(own)} tensors from {p} (method {report['method']}); "
                   f"missing {len(report['missing'])}, unexpected {len(report['unexpected'])}, "
                   f"shape mismatch {len(report['shape_mismatch'])}", err=True)
    return report


def resume_path(cfg: DetectConfig) -> Path | None:
    """``train.resume``: "" → None; "auto"/"last" → <out>/last.pt; else the given file."""
    r = cfg.train.resume.strip()
    if not r:
        return None
    p = Path(cfg.out) / "last.pt" if r in ("auto", "last") else Path(r)
    if not p.is_file():
        raise click.ClickException(f"{p}: checkpoint to resume from not found (train.resume)")
    return p


def resume_config(path: str | Path, overrides: list[str]) -> DetectConfig:
    """The config saved in a checkpoint with ``overrides`` on top (`flowdet train --resume` alone)."""
    from flowdet.config import merge, parse_override
    from flowdet.engine.checkpoint import load_checkpoint

    saved = load_checkpoint(path).get("config")
    if not isinstance(saved, dict):
        raise click.ClickException(f"{path}: checkpoint holds no config to resume with")
    cfg = merge(DetectConfig(), saved, f"{path} (config)")
    for item in overrides:  # same semantics as flowdet.config.load_config's overrides
        keys, value = parse_override(item)
        for k in reversed(keys):
            value = {k: value}
        cfg = merge(cfg, value, f"--set {item}")
    return cfg


def train(cfg: DetectConfig, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a detector; returns a summary: run_dir, last, best, best_ap, best_epoch, metrics…

    Under torchrun (WORLD_SIZE > 1) this joins the process group (NCCL on GPU, gloo on CPU); only
    rank 0 writes files. ``on_epoch_end(epoch, row)`` is called on every rank after last.pt is saved."""
    from flowdet.detect.trainer import Trainer

    from flowdet import validate as checks

    validate(cfg)
    checks.writable_dir(cfg.out, "out")  # before the data is read: a wrong --out costs nothing
    device = dist.init_from_env(cfg.train.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes per iteration chunk: autotune pays off
    try:
        return Trainer(cfg, device, resume_path(cfg)).run(on_epoch_end)
    except KeyboardInterrupt:
        # last.pt is only ever replaced atomically after a whole epoch, so it is consistent here.
        last = Path(cfg.out) / "last.pt"
        if dist.is_main():
            if last.exists():
                click.echo(f"\ninterrupted: {last} holds the last finished epoch; "
                           f"resume with: flowdet train --resume {last}", err=True)
            else:
                click.echo("\ninterrupted before the first epoch finished; nothing to resume", err=True)
        raise
    finally:
        dist.cleanup()
