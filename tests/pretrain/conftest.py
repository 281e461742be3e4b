"""Fixtures of the pretraining tests: tiny configs, the synthetic scenes as frames."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # 2 threads on a shared 2-core box spin-wait: 10× slower steps


def tiny_cfg(**overrides):
    """A PretrainConfig sized for a 2-core CI box (nano, 64 px crops, small frames)."""
    from flowdet.config import load_config
    from flowdet.pretrain.config import PretrainConfig

    base = {"model.size": "nano", "data.frame_size": 320, "method.crop": 64, "method.patch": 48,
            "train.batch": 4, "train.epochs": 1, "train.warmup_epochs": 0, "train.threads": 1}
    base.update(overrides)
    return load_config(PretrainConfig, None, [f"{k}={v}" for k, v in base.items()])


@pytest.fixture(scope="session")
def synth_frames(synth_small) -> Path:
    """The synthetic water scenes' image folder (labels unused)."""
    return synth_small / "images"
