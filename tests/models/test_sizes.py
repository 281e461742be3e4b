"""The size registry (flowdet.models.sizes) is the one list: the CLI, the builder and the recipes read it;
nano-dh is nano-d with nano's depthwise head (fewer head parameters, the same backbone/neck);
nano-dd / nano-ddl are nano-d two bottlenecks deep, nano-ddl with nano-dl's one-conv head branches."""
from __future__ import annotations

import pytest

from flowdet.detect.recipes import SIZE_RECIPES
from flowdet.models.sizes import MODEL_SIZES, ModelSize, model_size, register_model_size
from flowdet.models.yolox import build_model


def test_every_registered_size_builds_and_gets_a_recipe():
    assert tuple(MODEL_SIZES) == ("nano", "nano-d", "nano-dh", "nano-dl", "nano-dr", "nano-ddl", "nano-dd", "tiny",
                                 "s", "m")
    assert set(SIZE_RECIPES) == set(MODEL_SIZES)  # every size gets a recipe
    assert SIZE_RECIPES["nano"]["augment"]["mixup_prob"] == 0 and SIZE_RECIPES["m"]["augment"]["mixup_prob"] == 1


def test_registry_refuses_a_second_name_and_names_the_choices():
    with pytest.raises(ValueError, match="registered twice"):
        register_model_size("nano")(lambda: ModelSize(0.33, 0.25, True))
    with pytest.raises(ValueError, match="nano-d"):
        model_size("huge")


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_nano_dh_is_nano_d_with_a_depthwise_head():
    dense, dh, nano = build_model("nano-d"), build_model("nano-dh"), build_model("nano")
    assert _params(dh.backbone) == _params(dense.backbone) and _params(dh.neck) == _params(dense.neck)
    assert _params(dh.head) == _params(nano.head) < _params(dense.head)


def test_nano_dl_has_one_conv_per_head_branch():
    lite, dense = build_model("nano-dl"), build_model("nano-d")
    assert all(len(b) == 1 for b in list(lite.head.cls_convs) + list(lite.head.reg_convs))
    assert _params(lite.backbone) == _params(dense.backbone) and _params(lite.head) < _params(dense.head)


def _bottlenecks(model) -> list[int]:
    from flowdet.models.blocks import CSPLayer

    return [len(m.m) for m in model.modules() if isinstance(m, CSPLayer)]


def test_nano_dd_sizes_are_nano_d_twice_as_deep():
    """Depth 0.67 must round to 2 bottlenecks per unit (nano-d: 1), widths unchanged; nano-ddl keeps
    nano-dl's head — the latency match with nano-d (docs/benchmarks.md) rests on both."""
    dense, deep, deep_lite, lite = (build_model(s) for s in ("nano-d", "nano-dd", "nano-ddl", "nano-dl"))
    assert _bottlenecks(deep) == [2 * n for n in _bottlenecks(dense)] == _bottlenecks(deep_lite)
    assert deep.backbone.out_channels == dense.backbone.out_channels
    assert _params(deep.head) == _params(dense.head) and _params(deep_lite.head) == _params(lite.head)
