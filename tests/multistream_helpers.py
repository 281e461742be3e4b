"""Fakes for the multi-source tests: a square-finding predictor (exact boxes, no model), videos of
squares drifting through the frame, and a live source that can be taken down and brought back."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from flowdet.core.detections import Detections
from flowdet.runtime.stream.sources import SourceError


class SquareFinder:
    """Predictor: every bright blob is one detection with score ``score`` (0.9; a weak model: 0.05)."""

    names = ["square"]

    def __init__(self, score: float = 0.9):
        self.batches: list[int] = []
        self.score = score

    def predict(self, images, conf=0.25, iou=0.65):
        self.batches.append(len(images))
        out = []
        for img in images:
            m = (img.min(axis=2) > 230).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(m)
            b = np.array([[x, y, x + w, y + h] for x, y, w, h, a in stats[1:] if a >= 20], np.float32).reshape(-1, 4)
            out.append(Detections(b, np.full(len(b), self.score, np.float32), np.zeros(len(b), np.int64)))
        return out


def square_frame(k: int, n_objects: int, size=(320, 240), period: int = 20) -> np.ndarray:
    """Frame k: object i enters at the top at frame i*period and moves down 6 px per frame."""
    w, h = size
    img = np.full((h, w, 3), 60, np.uint8)
    for i in range(n_objects):
        y = (k - i * period) * 6
        if 0 <= y < h - 12:
            x = 30 + (i * 70) % (w - 60)
            img[y:y + 12, x:x + 12] = 255
    return img


def square_video(path: Path, n_objects: int, frames: int, fps: float = 25.0) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    for k in range(frames):
        vw.write(square_frame(k, n_objects))
    vw.release()
    return path


class FakeLive:
    """A live source generating square frames at ``fps`` (UNIX timestamps). ``down()`` makes reads fail
    and reopening raise until ``up()``; ``never_opens`` makes every open fail (an unreachable camera)."""

    live = True

    def __init__(self, name: str, fps: float = 25.0, n_objects: int = 1000, period: int = 20,
                 never_opens: bool = False):
        self.description, self.fps = name, fps
        self.n_objects, self.period, self.never_opens = n_objects, period, never_opens
        self.k = 0
        self.is_down = threading.Event()
        self.stall = threading.Event()       # set: read() blocks (a camera that hangs, not closes)
        self.released = threading.Event()
        self.opened = False
        self.opens = 0
        self.next_t = 0.0

    def down(self):
        self.is_down.set()

    def up(self):
        self.is_down.clear()

    def open(self):
        if self.never_opens or self.is_down.is_set():
            raise SourceError(f"{self.description}: cannot open")
        self.opened = True
        self.opens += 1
        self.next_t = time.perf_counter()

    def read(self):
        if self.stall.is_set():
            self.released.wait(60)
        if self.is_down.is_set() or not self.opened:
            return None
        delay = self.next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self.next_t = max(self.next_t + 1 / self.fps, time.perf_counter() - 1 / self.fps)
        img = square_frame(self.k % (self.n_objects * self.period), self.n_objects, period=self.period)
        self.k += 1
        return img, time.time(), None

    def close(self):
        self.opened = False


def read_status(out_dir: Path) -> dict:
    """The ``sources`` part of OUT/status.json, or {} while it is missing or being replaced."""
    try:
        return json.loads((Path(out_dir) / "status.json").read_text())["sources"]
    except (OSError, ValueError):
        return {}


def wait_for_status(out_dir: Path, cond, limit: float = 60.0) -> tuple[dict, float]:
    """Poll status.json until ``cond(sources)`` holds → (sources, monotonic time); AssertionError after ``limit`` s."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        s = read_status(out_dir)
        if s and cond(s):
            return s, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out; status {read_status(out_dir)}")
