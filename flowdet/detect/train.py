"""`flowdet train` as a Python API: ``train(cfg)`` and ``load_backbone(model, path)``.

The loop itself lives in flowdet.detect.trainer; this module resolves the device / process group,
the checkpoint to resume from, and turns Ctrl-C into a clean exit that says how to resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from flowdet import log
from flowdet.detect.config import DetectConfig, validate
from flowdet.engine import dist
from flowdet.errors import ModelFileError


def load_backbone(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a ``backbone.pt`` (from `flowdet pretrain`) into ``model.backbone``.

    Returns {"path", "method", "loaded", "missing", "unexpected", "shape_mismatch"}. Raises
    ModelFileError (exit 2 through the CLI) when the file is unreadable or not a backbone artifact, the model size
    differs, or no key matches."""
    from flowdet.engine.checkpoint import load_checkpoint

    p = Path(path)
    art = load_checkpoint(p)
    if not isinstance(art, dict) or not isinstance(art.get("state_dict"), dict):
        raise ModelFileError(f"{p}: not a flowdet backbone artifact (no 'state_dict'; made by `flowdet pretrain`)")
    size = getattr(model, "size", None)
    if art.get("model_size") is not None and size is not None and art["model_size"] != size:
        raise ModelFileError(f"{p}: backbone is for model size '{art['model_size']}', "
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
        raise ModelFileError(f"{p}: no key matches the {size} backbone "
                             f"({len(report['unexpected'])} unexpected, {len(report['shape_mismatch'])} shape mismatches)")
    model.backbone.load_state_dict(matched, strict=False)
    if dist.is_main():
        log.info(f"backbone: loaded {len(matched)}/{len(own)} tensors from {p} (method {report['method']}); "
                   f"missing {len(report['missing'])}, unexpected {len(report['unexpected'])}, "
                 f"shape mismatch {len(report['shape_mismatch'])}")
    return report


def resume_path(cfg: DetectConfig) -> Path | None:
    """``train.resume``: "" → None; "auto"/"last" → <out>/last.pt; else the given file."""
    r = cfg.train.resume.strip()
    if not r:
        return None
    p = Path(cfg.out) / "last.pt" if r in ("auto", "last") else Path(r)
    if not p.is_file():
        raise ModelFileError(f"{p}: checkpoint to resume from not found (train.resume)")
    return p


def resume_config(path: str | Path, overrides: list[str]) -> DetectConfig:
    """The config saved in a checkpoint with ``overrides`` on top (`flowdet train --resume` alone)."""
    from flowdet.config import apply_overrides, merge
    from flowdet.engine.checkpoint import load_checkpoint

    saved = load_checkpoint(path).get("config")
    if not isinstance(saved, dict):
        raise ModelFileError(f"{path}: checkpoint holds no config to resume with")
    return apply_overrides(merge(DetectConfig(), saved, f"{path} (config)"), overrides)


def train(cfg: DetectConfig, on_epoch_end: Callable[[int, dict], None] | None = None,
          origin: str | None = None) -> dict[str, Any]:
    """Train (or resume) a detector; returns a summary: run_dir, last, best, best_ap, best_epoch, metrics…

    Under torchrun (WORLD_SIZE > 1) this joins the process group (NCCL on GPU, gloo on CPU); only
    rank 0 writes files. ``on_epoch_end(epoch, row)`` is called on every rank after last.pt is saved.
    ``origin`` (e.g. "recipe 'nano' (no --config)") heads the one-line recipe summary printed at start."""
    from flowdet.detect.trainer import Trainer

    from flowdet.detect.config import resolve_schedule

    validate(cfg)
    cfg, notes = resolve_schedule(cfg)
    device = dist.init_from_env(cfg.train.device)
    if dist.is_main():
        for note in notes:
            log.info(f"note: {note}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes per iteration chunk: autotune pays off
    try:
        return Trainer(cfg, device, resume_path(cfg), origin).run(on_epoch_end)
    except KeyboardInterrupt:
        # last.pt is only ever replaced atomically after a whole epoch, so it is consistent here.
        last = Path(cfg.out) / "last.pt"
        if dist.is_main():
            if last.exists():
                log.info(f"\ninterrupted: {last} holds the last finished epoch; "
                         f"resume with: flowdet train --resume {last}")
            else:
                log.info("\ninterrupted before the first epoch finished; nothing to resume")
        raise
    finally:
        dist.cleanup()
