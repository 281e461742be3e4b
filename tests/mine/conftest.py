"""Fixtures of the mining tests: synthetic videos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


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
