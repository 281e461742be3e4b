"""Per-size training recipes: what `flowdet train --size X` gets when no ``--config`` is given.

Why: the dataclass defaults of :class:`flowdet.data.transforms.AugmentConfig` are YOLOX-L's
augmentation (mosaic + mixup 1.0, scale 0.1–2.0, ±10° rotation, ±2° shear). On tiny floating
debris at 640 px that shrinks ~27% of training boxes under 6 px and blends every sample 50/50
with another, and small models cannot absorb it (YOLOX itself turns mixup off for nano/tiny).
Measured on Grogol (docs/benchmarks.md): nano at 30 epochs, AP 0.047 with the YOLOX-L defaults vs
0.141 with the gentle recipe below and lr 0.01.

A recipe is data (section → key → value), merged over the dataclass defaults *before* the user's
``--set``/flags, so every value stays overridable and the resolved config lands in the run's
config.yaml. With ``--config FILE`` the file is the recipe and nothing here applies.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowdet.config import apply_overrides, load_config, merge
from flowdet.detect.config import AUTO, DetectConfig
from flowdet.models.sizes import MODEL_SIZES

# Small models (depthwise nano, and the dense "nano-d"/tiny): no mixup, mild scale, no rotation/shear.
_SMALL = {
    "augment": {"mosaic_prob": 1.0, "mixup_prob": 0.0, "scale": [0.5, 1.5], "degrees": 0.0, "shear": 0.0},
}
# s and m: YOLOX's own recipe (the AugmentConfig defaults), stated explicitly so the printout is honest.
_LARGE = {
    "augment": {"mosaic_prob": 1.0, "mixup_prob": 1.0, "scale": [0.1, 2.0], "degrees": 10.0, "shear": 2.0},
}
# Each registered size names its recipe (flowdet.models.sizes).
SIZE_RECIPES: dict[str, dict[str, Any]] = {name: {"small": _SMALL, "large": _LARGE}[s.recipe]
                                           for name, s in MODEL_SIZES.items()}


def recipe_for(size: str) -> dict[str, Any]:
    """The recipe dict of a model size ({} for a size without one)."""
    return SIZE_RECIPES.get(size, {})


def load_detect_config(config: str | None, overrides: Iterable[str]) -> tuple[DetectConfig, str | None]:
    """``--config`` + overrides → DetectConfig; without ``--config`` the size's recipe goes under the
    overrides. Returns (config, name of the recipe applied or None)."""
    overrides = list(overrides)
    if config:
        return load_config(DetectConfig, config, overrides), None
    asked = load_config(DetectConfig, None, overrides).model
    size = asked.size  # the size the user asked for
    if size == AUTO and asked.backbone:  # a pretrained backbone fixes the size: take its own
        from flowdet.detect.backbone import backbone_size

        size = backbone_size(asked.backbone) or AUTO
        overrides = overrides + ([f"model.size={size}"] if size != AUTO else [])
    if size == AUTO:
        from flowdet.detect.auto_input import AUTO_MODEL_SIZE

        size = AUTO_MODEL_SIZE  # the size auto picks from the data (flowdet.detect.auto_input)
    recipe = recipe_for(size)
    base = merge(DetectConfig(), recipe, f"recipe '{size}'") if recipe else DetectConfig()
    return apply_overrides(base, overrides), (size if recipe else None)


def describe(cfg: DetectConfig) -> str:
    """One line with the choices that matter most for a short run (printed at the start of train)."""
    a, t = cfg.augment, cfg.train
    geo = "no rotation/shear" if not a.degrees and not a.shear else f"rotation ±{a.degrees:g}°, shear ±{a.shear:g}°"
    paste = f", copy-paste {a.copy_paste:g}" if a.copy_paste else ""
    return (f"mosaic {a.mosaic_prob:g}, mixup {a.mixup_prob:g}{paste}, scale {a.scale[0]:g}–{a.scale[1]:g}, {geo}; "
            f"lr {cfg.base_lr():.4g} at batch {t.batch}")
