"""The detector checkpoint contract (``last.pt`` / ``best.pt``) and loading a model from it.

A checkpoint is a dict with at least:
    "model":      state_dict of flowdet.models.YOLOX (the raw, trained weights)
    "ema":        {"ema": state_dict, "updates": int} or None
    "model_cfg":  {"size": "nano"|"nano-d"|"tiny"|"s"|"m", "num_classes": int, "p2": bool (absent = False)}
    "names":      list of class names (index = class id; COCO category ids in "cat_ids")
    "cat_ids":    list of COCO category ids, same order as names
    "img_size":   [H, W] the training input size
    "epoch":      last finished epoch (0-based), plus optimizer/scheduler/scaler/rng/config for resume
    "flowdet_version": str
Inference uses the EMA weights when present (as YOLOX does).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowdet.engine.checkpoint import load_checkpoint
from flowdet.errors import ModelFileError
from flowdet.models import YOLOX, build_model


def model_from_checkpoint(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> tuple[YOLOX, dict[str, Any]]:
    """(model in eval mode, checkpoint meta without the weights)."""
    ckpt = load_checkpoint(path, map_location)
    if "model_cfg" not in ckpt or "model" not in ckpt:
        raise ModelFileError(f"{path}: not a flowdet detector checkpoint (no 'model_cfg'/'model')")
    cfg = ckpt["model_cfg"]
    model = build_model(cfg["size"], int(cfg["num_classes"]), p2=bool(cfg.get("p2", False)))
    state = ckpt["ema"]["ema"] if (use_ema and ckpt.get("ema")) else ckpt["model"]
    model.load_state_dict(state)
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "ema", "optimizer", "scaler", "rng")}
    meta.setdefault("names", [f"class{i}" for i in range(model.num_classes)])
    meta.setdefault("cat_ids", list(range(1, model.num_classes + 1)))
    meta.setdefault("img_size", [640, 640])
    return model, meta


def minimal_checkpoint(model: YOLOX, names: list[str], img_size: tuple[int, int], cat_ids: list[int] | None = None) -> dict[str, Any]:
    """A checkpoint with weights and metadata only (tests, export of a fresh model)."""
    from flowdet import __version__

    return {
        "model": model.state_dict(), "ema": None,
        "model_cfg": {"size": model.size, "num_classes": model.num_classes, "p2": model.p2},
        "names": list(names), "cat_ids": list(cat_ids or range(1, len(names) + 1)),
        "img_size": list(img_size), "epoch": -1, "flowdet_version": __version__,
    }


@torch.no_grad()
def torch_predict_arrays(model: YOLOX, batch: torch.Tensor) -> tuple[Any, Any]:
    """[B, 3, H, W] float 0–255 → (boxes [B, N, 4], scores [B, N, C]) as numpy float32."""
    boxes, scores = model.predict(batch)
    return boxes.float().cpu().numpy(), scores.float().cpu().numpy()
