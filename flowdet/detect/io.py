"""The detector checkpoint contract (``last.pt`` / ``best.pt``) and loading a model from it.

A checkpoint is a dict with at least:
    "model":      state_dict of flowdet.models.YOLOX (the raw, trained weights)
    "ema":        {"ema": state_dict, "updates": int} or None
    "teacher":    {"ema": state_dict, "updates": int} or None (absent = None): the teacher of a
                  `train --unlabeled` run once its burn-in ended (flowdet.detect.semi) — the weights it evaluated
    "model_cfg":  {"size": "nano"|"nano-d"|"nano-dh"|"nano-dl"|"nano-dr"|"nano-ddl"|"nano-dd"|"tiny"|"s"|"m", "num_classes": int, "p2": bool (absent = False)}
    "names":      list of class names (index = class id; COCO category ids in "cat_ids")
    "cat_ids":    list of COCO category ids, same order as names
    "img_size":   [H, W] the training input size
    "epoch":      last finished epoch (0-based), plus optimizer/scheduler/scaler/rng/config for resume
    "flowdet_version": str
``last.pt`` holds all of it (an exact resume); ``best.pt`` is :func:`inference_checkpoint` of it: the
weights (raw, EMA, teacher), metadata, config and metrics, without the RESUME_ONLY state (the
optimizer's buffers double a checkpoint's size and only ``--resume`` reads them).
Inference uses the weights training evaluated: the teacher when present, else the EMA (as YOLOX does),
else the raw weights; ``use_ema=False`` takes the raw weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowdet.engine.checkpoint import load_checkpoint
from flowdet.errors import ModelFileError
from flowdet.models.yolox import YOLOX, build_model


def model_from_checkpoint(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> tuple[YOLOX, dict[str, Any]]:
    """(model in eval mode, checkpoint meta without the weights)."""
    ckpt = load_checkpoint(path, map_location)
    if "model_cfg" not in ckpt or "model" not in ckpt:
        raise ModelFileError(f"{path}: not a flowdet detector checkpoint (no 'model_cfg'/'model')")
    cfg = _checked_meta(ckpt, path)
    model = build_model(cfg["size"], int(cfg["num_classes"]), p2=bool(cfg.get("p2", False)))
    try:
        model.load_state_dict(evaluated_weights(ckpt) if use_ema else ckpt["model"])
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ModelFileError(f"weights do not fit a {cfg['size']} model with {cfg['num_classes']} classes ({first})",
                             path=path) from None
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "ema", "optimizer", "scaler", "rng")}
    meta.setdefault("names", [f"class{i}" for i in range(model.num_classes)])
    meta.setdefault("cat_ids", list(range(1, model.num_classes + 1)))
    meta.setdefault("img_size", [640, 640])
    return model, meta


def stored_best_conf(meta: dict[str, Any]) -> tuple[float, str] | None:
    """(threshold, where it comes from) of the evaluation a checkpoint stores with its weights
    ("metrics": the eval of the epoch it was saved at), when that evaluation found anything."""
    m = meta.get("metrics")
    if not isinstance(m, dict):
        return None
    conf, f1 = m.get("best_f1_conf"), m.get("best_f1")
    if not (isinstance(conf, (int, float)) and isinstance(f1, (int, float))) or isinstance(conf, bool) \
            or isinstance(f1, bool) or not f1 > 0 or not 0 <= conf <= 1:
        return None
    epoch = meta.get("epoch")
    at = f" at epoch {epoch + 1}" if isinstance(epoch, int) and epoch >= 0 else ""
    return float(conf), f"best F1 {f1:.3f} on training's validation set{at}"


RESUME_ONLY = ("optimizer", "scaler", "rng", "scheduler")


def inference_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` without what only an exact resume reads: what best.pt keeps for eval, export,
    predict and fine-tuning (``--backbone best.pt``)."""
    return {k: v for k, v in ckpt.items() if k not in RESUME_ONLY}


def check_resumable(ck: dict[str, Any], path: str | Path) -> None:
    """Every field an exact resume reads, present and of the right type (tried on the live RNGs,
    which are put back at once): a wrong one is one line naming it, never a traceback (or a silent
    int("5")) later. best.pt (:func:`inference_checkpoint`) is refused with a pointer to last.pt."""
    import math

    from flowdet.engine.checkpoint import rng_state, set_rng_state

    for key in ("model", "optimizer", "epoch", "rng"):
        if key not in ck:
            hint = "; best.pt keeps the weights only: resume from last.pt" if "model_cfg" in ck else ""
            raise ModelFileError(f"{path}: not a resumable training checkpoint (no '{key}'){hint}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    expected = {"epoch": (is_int(ck["epoch"]) and ck["epoch"] >= 0, "a whole number >= 0"),
                "model": (isinstance(ck["model"], dict), "a state dict"),
                "optimizer": (isinstance(ck["optimizer"], dict), "a state dict"),
                "model_cfg": (isinstance(ck.get("model_cfg", {}), dict), "a mapping"),
                "scheduler": (isinstance(ck.get("scheduler", {}), dict), "a mapping"),
                "best_ap": (isinstance(ck.get("best_ap", -1.0), (int, float)) and not isinstance(
                    ck.get("best_ap"), bool) and math.isfinite(ck.get("best_ap", -1.0)), "a finite number"),
                "best_epoch": (is_int(ck.get("best_epoch", -1)) and ck.get("best_epoch", -1) >= -1,
                               "a whole number >= -1"),
                "metrics": (isinstance(ck.get("metrics"), (dict, type(None))), "a mapping")}
    for key, (ok, want) in expected.items():
        if not ok:
            raise ModelFileError(f"not a resumable training checkpoint: '{key}' must be {want}, got "
                                 f"{type(ck.get(key)).__name__}", path=path)
    current = rng_state()
    try:
        set_rng_state(ck["rng"])
    except Exception as e:  # noqa: BLE001 — any malformed state (KeyError, TypeError, RuntimeError, …)
        raise ModelFileError(f"not a resumable training checkpoint: 'rng' is not a random-generator state "
                             f"({type(e).__name__})", path=path) from None
    finally:
        set_rng_state(current)


def evaluated_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The state_dict training evaluated (and chose best.pt by): teacher, else EMA, else the raw model."""
    for key in ("teacher", "ema"):
        if ckpt.get(key):
            return ckpt[key]["ema"]
    return ckpt["model"]


def _checked_meta(ckpt: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``model_cfg`` after checking it and the metadata inference relies on (names, cat_ids, img_size)."""
    from flowdet.models.sizes import MODEL_SIZES

    cfg = ckpt["model_cfg"]
    if not isinstance(cfg, dict) or cfg.get("size") not in MODEL_SIZES:
        raise ModelFileError(f"model_cfg.size must be one of {', '.join(MODEL_SIZES)}, got "
                             f"{cfg.get('size') if isinstance(cfg, dict) else cfg!r}", path=path)
    n = cfg.get("num_classes")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10000:
        raise ModelFileError(f"model_cfg.num_classes must be an integer in [1, 10000], got {n!r}", path=path)
    names, cat_ids, size = ckpt.get("names"), ckpt.get("cat_ids"), ckpt.get("img_size")
    if names is not None and not (isinstance(names, (list, tuple)) and len(names) == n
                                  and all(isinstance(x, str) for x in names)):
        raise ModelFileError(f"'names' must be a list of {n} strings, got {names!r}"[:200], path=path)
    if cat_ids is not None and not (isinstance(cat_ids, (list, tuple)) and len(cat_ids) == n
                                    and all(isinstance(x, int) and not isinstance(x, bool) for x in cat_ids)):
        raise ModelFileError(f"'cat_ids' must be a list of {n} integers, got {cat_ids!r}"[:200], path=path)
    if size is not None and not (isinstance(size, (list, tuple)) and len(size) == 2
                                 and all(isinstance(x, int) and not isinstance(x, bool) for x in size)):
        raise ModelFileError(f"'img_size' must be [H, W] integers, got {size!r}"[:200], path=path)
    return cfg


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
