"""The pretraining methods by name (timm's ``register_model`` pattern): a method is one file under
``flowdet/pretrain/methods/`` whose module class is decorated ::

    @register_method("insloc", sampler=CompositeSampler, dataset=CompositeDataset, check=_fits)
    class InsLoc(nn.Module):
        def __init__(self, backbone: nn.Module, cfg: MethodConfig): ...
        def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # "loss" + what to log

and ``flowdet pretrain --method insloc``, ``method.name: insloc``, ``flowdet cfg`` and ``flowdet
efficiency --method`` all find it: adding a method touches that one file.

Names and defaults are found without importing a method (its file is ``<name with _>.py``, its tuned
defaults, if it has any, ``configs/pretrain_<name with _>.yaml``: configs are data, and doubles as a
``--config`` preset), so ``flowdet pretrain --help``, which states every method's defaults, stays
torch-free (0.6 s; importing the five method files for it took 15 s on the 2-core box).
:func:`get_method` imports the file, whose decorator registers it; a method registered anywhere
else (a test, a plugin) is found as well once its module has run.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowdet.config import ConfigError

BUILTIN_DIR = Path(__file__).resolve().parent / "methods"
BUILTIN_PACKAGE = "flowdet.pretrain.methods"
INPUTS = ("frames", "ann")  # what a method trains on: unlabeled frames, or a labelled COCO json

Need = Callable[[bool, str, str], None]  # config.validate's ``need(ok, key, message)``


@dataclass(frozen=True)
class MethodSpec:
    """What the loop needs of a method: its module, its samples and its own config checks."""

    name: str
    build: Callable[..., Any]  # (backbone, MethodConfig) → nn.Module; forward(batch) → {"loss", ...}
    inputs: str = "frames"  # one of INPUTS: which of data.frames / data.ann it needs
    sampler: Callable[..., Any] | None = None  # (MethodConfig, AugConfig) → sampler(img, rng) → sample
    dataset: Callable[..., Any] | None = None  # (FrameStore, sampler, seed, samples_per_frame) → Dataset
    data: Callable[..., Any] | None = None  # (PretrainConfig) → (train, held-out | None, info); replaces the two above
    check: Callable[[Any, Need], None] | None = None  # (PretrainConfig, need) → its own cross-field checks


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(name: str, **spec: Any) -> Callable[[Any], Any]:
    """Class (or factory) decorator: register ``build`` under ``name`` with the :class:`MethodSpec`
    fields given as keywords. Registering a taken name is an error (two files claiming one method)."""
    if spec.get("inputs", "frames") not in INPUTS:
        raise ValueError(f"method {name!r}: inputs must be one of {INPUTS}")
    if spec.get("data") is None and spec.get("sampler") is None:
        raise ValueError(f"method {name!r}: give data= (its datasets) or sampler= (its samples of a frame)")

    def wrap(build: Any) -> Any:
        old = _REGISTRY.get(name)
        if old is not None and old.build.__qualname__ != build.__qualname__:
            raise ValueError(f"method {name!r} is registered twice ({old.build.__module__}, {build.__module__})")
        _REGISTRY[name] = MethodSpec(name, build, **spec)
        return build

    return wrap


def unregister_method(name: str) -> None:
    """Drop a registration (tests that register a toy method clean up after themselves)."""
    _REGISTRY.pop(name, None)


def _module_of(name: str) -> str:
    return name.replace("-", "_")


def method_names() -> tuple[str, ...]:
    """Every method: the built-in files (no import) and whatever else has registered, sorted."""
    builtin = {m.name.replace("_", "-") for m in pkgutil.iter_modules([str(BUILTIN_DIR)]) if not m.ispkg}
    return tuple(sorted(builtin | set(_REGISTRY)))


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``, importing its built-in file on first use."""
    if name not in _REGISTRY and name in method_names():
        importlib.import_module(f"{BUILTIN_PACKAGE}.{_module_of(name)}")
    if name not in _REGISTRY:
        raise ConfigError(f"'method.name': unknown method {name!r} (choose from {', '.join(method_names())})")
    return _REGISTRY[name]
