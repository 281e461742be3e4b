"""Load a pretrained ``backbone.pt`` (from `flowdet pretrain`) into a detector.

Below both ``train.py`` (the stage) and ``trainer.py`` (the loop, which calls it), so neither has to
import the other to reach it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from flowdet import log
from flowdet.engine import dist
from flowdet.errors import ModelFileError

# Share of the model's backbone tensors a backbone.pt must fill (same shapes), else it is refused.
MIN_LOADED = 0.9


def backbone_size(path: str | Path) -> str | None:
    """The model size a ``backbone.pt`` was pretrained for (None when it does not say)."""
    from flowdet.engine.checkpoint import load_checkpoint

    art = load_checkpoint(Path(path))
    size = art.get("model_size") if isinstance(art, dict) else None
    if size is None and isinstance(art, dict) and isinstance(art.get("model_cfg"), dict):
        size = art["model_cfg"].get("size")  # a detector checkpoint (fine-tuning from best.pt)
    return size if isinstance(size, str) else None


def load_backbone(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a ``backbone.pt`` (from `flowdet pretrain`) into ``model.backbone``.

    Returns {"path", "method", "loaded", "missing", "unexpected", "shape_mismatch"}. Raises
    ModelFileError (exit 2 through the CLI) when the file is unreadable or not a backbone
    artifact, the model size differs, any tensor has another shape, or fewer than MIN_LOADED of
    the backbone's tensors would load."""
    from flowdet.engine.checkpoint import load_checkpoint

    p = Path(path)
    art = load_checkpoint(p)
    if isinstance(art, dict) and "state_dict" not in art and isinstance(art.get("model"), dict) \
            and isinstance(art.get("model_cfg"), dict):  # a detector's best.pt / last.pt: fine-tune from it
        from flowdet.detect.io import evaluated_weights

        art = {"state_dict": evaluated_weights(art), "model_size": art["model_cfg"].get("size"), "method": "detector"}
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
    if report["shape_mismatch"] or len(matched) < MIN_LOADED * len(own):
        # A backbone of another width or depth: a few tensors would load and training would go on
        # as "pretrained" from what is mostly random init.
        raise ModelFileError(
            f"{p}: does not fit the {size} backbone: {len(matched)}/{len(own)} tensors would load, "
            f"{len(report['shape_mismatch'])} of another shape (first: {(report['shape_mismatch'] or ['-'])[0]}), "
            f"{len(report['missing'])} missing (pretrained for another model? at least {MIN_LOADED:.0%} must fit)")
    model.backbone.load_state_dict(matched, strict=False)
    if dist.is_main():
        log.info(f"backbone: loaded {len(matched)}/{len(own)} tensors from {p} (method {report['method']}); "
                 f"missing {len(report['missing'])}, unexpected {len(report['unexpected'])}, "
                 f"shape mismatch {len(report['shape_mismatch'])}")
    return report
