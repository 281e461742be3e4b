"""The method registry: a method registered in one place (here, in the test) trains through the
normal entry point, its checks apply, and names and defaults are found without importing torch."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from no_torch import run_without_torch
from torch import nn

from flowdet.config import ConfigError
from flowdet.engine.checkpoint import load_checkpoint
from flowdet.pretrain.config import method_defaults, validate
from flowdet.pretrain.heads import to_input
from flowdet.pretrain.registry import get_method, method_names, register_method, unregister_method
from flowdet.pretrain.train import pretrain

from .conftest import tiny_cfg

BUILTIN = ("byol", "center-loss", "insloc", "patch-contrast", "self-emd")


def _centre_crop(m, aug):
    """The toy's sampler: the frame's centre, resized to ``method.crop`` (no augmentation)."""
    def sample(img: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        h, w = img.shape[:2]
        side = min(h, w)
        y, x = (h - side) // 2, (w - side) // 2
        return {"crops": cv2.resize(img[y:y + side, x:x + side], (m.crop, m.crop))}
    return sample


def _crop_fits(cfg, need) -> None:
    need(cfg.method.crop <= 96, "method.crop", "the toy method takes crops of at most 96 px")


class ToyMethod(nn.Module):
    """Pull the pooled dark5 features to zero: a loss that moves the backbone, nothing more."""

    def __init__(self, backbone: nn.Module, cfg) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pooled = self.backbone(to_input(batch["crops"]))["dark5"].mean((2, 3))
        return {"loss": pooled.pow(2).mean()}


@pytest.fixture()
def toy():
    register_method("toy", sampler=_centre_crop, check=_crop_fits)(ToyMethod)
    yield "toy"
    unregister_method("toy")


def test_a_method_registered_in_one_place_trains_one_step(toy, smooth_frames, tmp_path):
    assert toy in method_names() and get_method(toy).build is ToyMethod
    assert method_defaults(toy).method.name == toy  # no preset: the dataclass defaults
    cfg = tiny_cfg(**{"method.name": toy, "data.frames": f"[{smooth_frames}]", "train.out": str(tmp_path),
                      "train.batch": 2, "train.max_steps": 1})
    s = pretrain(cfg)
    assert s["method"] == toy and s["steps_per_epoch"] == 1 and np.isfinite(s["final_loss"])
    assert json.loads((tmp_path / "summary.json").read_text())["method"] == toy
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["method"] == toy and last["iteration"] == 1 and last["optimizer"]["state"]  # one real step
    backbone = load_checkpoint(tmp_path / "backbone.pt")
    assert backbone["method"] == toy  # the toy's whole model is the backbone: all of it is handed on
    assert set(backbone["state_dict"]) == {k.removeprefix("backbone.") for k in last["model"]}


def test_a_methods_own_check_runs_in_validate(toy, smooth_frames):
    cfg = tiny_cfg(**{"method.name": toy, "data.frames": f"[{smooth_frames}]", "method.crop": 128})
    with pytest.raises(ConfigError, match="method.crop.*at most 96"):
        validate(cfg)


def test_an_unknown_method_names_the_key_and_the_choices(smooth_frames):
    cfg = tiny_cfg(**{"method.name": "nope", "data.frames": f"[{smooth_frames}]"})
    with pytest.raises(ConfigError, match=r"method\.name.*'nope'.*byol, center-loss, insloc"):
        validate(cfg)


def test_a_registration_must_say_how_it_samples_and_claims_its_name_once():
    with pytest.raises(ValueError, match="data= .* or sampler="):
        register_method("toy-no-data")(ToyMethod)
    get_method("byol")  # its file has registered it
    with pytest.raises(ValueError, match="registered twice"):
        register_method("byol", sampler=_centre_crop)(ToyMethod)
    assert "toy-no-data" not in method_names()


def test_the_builtin_methods_are_listed_and_found_without_torch_until_built():
    r = run_without_torch("""
        from flowdet.pretrain.registry import method_names
        from flowdet.pretrain.config import method_defaults
        print(",".join(method_names()), method_defaults("self-emd").method.crop)  # what --help states
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [",".join(BUILTIN), "128"]
    for name in BUILTIN:  # each file registers the name it is listed under
        assert get_method(name).name == name
