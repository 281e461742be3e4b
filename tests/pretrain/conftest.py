"""Fixtures of the pretraining tests: tiny configs, synthetic videos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
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


def write_video(path: Path, n: int, moving: bool = True, size: tuple[int, int] = (160, 96), fps: float = 25.0) -> Path:
    """An mp4v video of ``n`` frames: a square moving across a textured background, or (``moving``
    False) the same frame repeated."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    bg = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    bg = cv2.GaussianBlur(bg, (0, 0), 3)
    for i in range(n):
        f = bg.copy()
        x = (i * 9) % (w - 30) if moving else 20
        cv2.rectangle(f, (x, 30), (x + 30, 60), (255, 255, 255), -1)
        if moving:
            f = np.roll(f, i * 5, axis=1)
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="session")
def smooth_frames(tmp_path_factory) -> Path:
    """8 frames of smooth random colour fields plus noise: neighbouring patches look alike, distant
    patches and other frames do not — the structure patch contrast is meant to learn."""
    out = tmp_path_factory.mktemp("smooth_frames")
    rng = np.random.default_rng(0)
    for i in range(8):
        field = rng.integers(0, 255, (3, 5, 3)).astype(np.uint8)
        img = cv2.resize(field, (320, 192), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"{i:02d}.jpg"), img)
    return out


@pytest.fixture(scope="session")
def synth_frames(synth_small) -> Path:
    """The synthetic water scenes' image folder (labels unused)."""
    return synth_small / "images"
