"""`flowdet train` as a Python API: ``train(cfg)`` (and ``resume_config`` for `--resume` alone).

The loop itself lives in flowdet.detect.trainer; this module resolves the device / process group,
the checkpoint to resume from, and turns Ctrl-C into a clean exit that says how to resume.
Loading a pretrained backbone is ``flowdet.detect.backbone.load_backbone`` (the trainer's, one level down).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from flowdet import log
from flowdet.detect.config import DetectConfig, validate
from flowdet.engine import dist
from flowdet.errors import ModelFileError


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
    from flowdet.core import validate as checks
    from flowdet.detect.config import resolve_schedule
    from flowdet.detect.trainer import Trainer

    validate(cfg)
    checks.writable_dir(cfg.out, "out")  # before the data is read: a wrong --out costs nothing
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
