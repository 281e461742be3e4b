"""The torch-free list of model sizes the CLI offers is the list the model builder knows, and
nano-dh is nano-d with nano's depthwise head (fewer head parameters, the same backbone/neck)."""
from __future__ import annotations

from flowdet.detect.config import MODEL_SIZE_NAMES
from flowdet.detect.recipes import SIZE_RECIPES
from flowdet.models import MODEL_SIZES, build_model


def test_cli_size_names_match_the_builder():
    assert tuple(MODEL_SIZES) == MODEL_SIZE_NAMES
    assert set(SIZE_RECIPES) == set(MODEL_SIZE_NAMES)  # every size gets a recipe


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
