"""The model size presets, registered once (timm's ``register_model`` style), torch-free.

A size is registered by a function that returns its :class:`ModelSize`; the name is the one users
type (``--size nano-d``, ``model.size``, a checkpoint's ``model_cfg.size``). The builder
(:mod:`flowdet.models.yolox`), the CLI's choices, the config check and the per-size training recipe
(:mod:`flowdet.detect.recipes`) all read :data:`MODEL_SIZES`, so adding a size is one function here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

RECIPES = ("small", "large")  # flowdet.detect.recipes: gentle augmentation, or YOLOX's own


@dataclass(frozen=True)
class ModelSize:
    depth: float
    width: float
    depthwise: bool
    head_depthwise: bool | None = None  # None: same as the backbone/neck
    head_branch_convs: int = 2  # 3×3 convs in each of the cls and reg branches (YOLOX: 2)
    recipe: str = "small"  # the training recipe without --config (one of RECIPES)
    rep: bool = False  # dense 3×3 convs as RepVGG blocks (flowdet.models.blocks.RepConv): one conv after fuse()

    @property
    def head_dw(self) -> bool:
        return self.depthwise if self.head_depthwise is None else self.head_depthwise


MODEL_SIZES: dict[str, ModelSize] = {}  # in registration order: the order --help lists them


def register_model_size(name: str) -> Callable[[Callable[[], ModelSize]], Callable[[], ModelSize]]:
    """Decorator: ``@register_model_size("nano")`` over a function returning the size's ModelSize."""
    def add(fn: Callable[[], ModelSize]) -> Callable[[], ModelSize]:
        if name in MODEL_SIZES:
            raise ValueError(f"model size '{name}' is registered twice")
        size = fn()
        if size.recipe not in RECIPES:
            raise ValueError(f"model size '{name}': recipe must be one of {', '.join(RECIPES)}, got '{size.recipe}'")
        MODEL_SIZES[name] = size
        return fn
    return add


def model_size(name: str) -> ModelSize:
    """The registered size ``name``; ValueError naming the choices otherwise."""
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown model size '{name}' (choose from {', '.join(MODEL_SIZES)})")
    return MODEL_SIZES[name]


@register_model_size("nano")
def nano() -> ModelSize:
    return ModelSize(0.33, 0.25, True)


@register_model_size("nano-d")
def nano_d() -> ModelSize:
    """nano's widths with full 3×3 convs: ~2× nano's CPU latency, still under YOLO26n's
    (docs/benchmarks.md); dense convs learn faster from scratch than depthwise ones and run at a
    higher FLOP rate on CPU."""
    return ModelSize(0.33, 0.25, False)


@register_model_size("nano-dh")
def nano_dh() -> ModelSize:
    """nano-d with nano's depthwise head: the four 3×3 head convs per level were ~19% of nano-d's
    CPU latency at stride 8 alone; depthwise there buys ~1.3× the input pixels at the same latency."""
    return ModelSize(0.33, 0.25, False, head_depthwise=True)


@register_model_size("nano-dl")
def nano_dl() -> ModelSize:
    """nano-d with one 3×3 conv per head branch instead of two: halves the head's cost at every level."""
    return ModelSize(0.33, 0.25, False, head_branch_convs=1)


@register_model_size("nano-dr")
def nano_dr() -> ModelSize:
    """nano-d whose dense 3×3 convs train as RepVGG blocks (3×3 + 1×1 + identity BN branches) and
    export as one 3×3 conv each: nano-d's ONNX graph and latency, more to train with. Opt-in: at 30
    epochs on Grogol (seed 0) AP 0.214 against nano-d's 0.231–0.247 (docs/benchmarks.md)."""
    return ModelSize(0.33, 0.25, False, rep=True)


@register_model_size("nano-ddl")
def nano_ddl() -> ModelSize:
    """nano-d two bottlenecks deep (depth 0.67: CSP depths 2/6/6/2 in the backbone and 2 in the neck,
    against 1/3/3/1 and 1) with nano-dl's one 3×3 conv per head branch: the stride-8 head's four 3×3
    convs were 26 % of nano-d's CPU time at 832×480, and this spends that time on depth at strides
    8–16 instead. 2.60 M params (nano-d 2.24 M), 6.96 GFLOPs at 832×480 (6.64). ONNX CPU latency
    1.05× nano-d's at 1 thread (2 threads 0.98–1.15×, three rounds), interleaved, on a loaded box
    (AMD EPYC Zen 4; benchmarks/latency_breakdown.py, docs/benchmarks.md "Between nano-d and tiny").
    Opt-in: at 30 epochs on Grogol (seed 0) AP 0.236 / APs 0.237, the default's 0.239 / 0.236."""
    return ModelSize(0.67, 0.25, False, head_branch_convs=1)


@register_model_size("nano-dd")
def nano_dd() -> ModelSize:
    """nano-d two bottlenecks deep (depth 0.67) with its full head: 2.82 M params, 8.17 GFLOPs at
    832×480; ONNX CPU latency 1.22× nano-d's at 1 thread (2 threads 1.08–1.25×), same run and box
    as nano-ddl's. Opt-in until screened at 30 epochs against nano-d."""
    return ModelSize(0.67, 0.25, False)


@register_model_size("tiny")
def tiny() -> ModelSize:
    return ModelSize(0.33, 0.375, False)


@register_model_size("s")
def small() -> ModelSize:
    return ModelSize(0.33, 0.50, False, recipe="large")


@register_model_size("m")
def medium() -> ModelSize:
    return ModelSize(0.67, 0.75, False, recipe="large")
