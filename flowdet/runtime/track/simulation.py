"""Synthetic ground-truth tracks and detector-like corruption (jitter, drops, false boxes), for the
tracker's tests and ``benchmarks/count_bench.py``. Numpy only; torch-free.

``frames``: a list with one ``(ids [K], boxes [K, 4] xyxy)`` entry per frame, the format of
:mod:`flowdet.metrics.tracking`.
"""
from __future__ import annotations

import numpy as np

FrameTracks = tuple[np.ndarray, np.ndarray]


def moving_objects(n_frames: int = 300, width: int = 640, height: int = 360, rate: float = 0.15,
                   size: tuple[float, float] = (6.0, 24.0), speed: tuple[float, float] = (1.0, 4.0),
                   seed: int = 0) -> list[FrameTracks]:
    """Objects entering at the top/sides and drifting through the frame (like debris passing a
    bridge camera); ``rate``: new objects per frame (Poisson). Ids start at 1."""
    rng = np.random.default_rng(seed)
    objs: list[list[float]] = []  # id, cx, cy, w, h, vx, vy
    frames = []
    nid = 0
    for _ in range(n_frames):
        for _ in range(rng.poisson(rate)):
            nid += 1
            w = float(rng.uniform(*size))
            h = w * float(rng.uniform(0.5, 1.0))
            v = float(rng.uniform(*speed))
            ang = float(rng.uniform(0.25 * np.pi, 0.75 * np.pi))
            objs.append([nid, float(rng.uniform(0.1, 0.9) * width), -h / 2 + 1, w, h, v * np.cos(ang), v * np.sin(ang)])
        ids, boxes, alive = [], [], []
        for o in objs:
            o[1] += o[5] + float(rng.normal(0, 0.2))
            o[2] += o[6] + float(rng.normal(0, 0.2))
            cx, cy, w, h = o[1:5]
            if cy - h / 2 > height or cx + w / 2 < 0 or cx - w / 2 > width:
                continue
            alive.append(o)
            if 0 <= cx < width and 0 <= cy < height:
                x1, y1 = max(cx - w / 2, 0), max(cy - h / 2, 0)
                x2, y2 = min(cx + w / 2, width), min(cy + h / 2, height)
                if x2 - x1 >= 2 and y2 - y1 >= 2:
                    ids.append(int(o[0]))
                    boxes.append([x1, y1, x2, y2])
        objs = alive
        frames.append((np.array(ids, np.int64), np.array(boxes, np.float64).reshape(-1, 4)))
    return frames


def corrupt(frames: list[FrameTracks], jitter: float = 0.05, drop: float = 0.0, false_rate: float = 0.0,
            width: int = 640, height: int = 360, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ground truth → detections (boxes [K, 4], scores [K]): box jitter (× box size, Gaussian), a
    ``drop`` share of true boxes removed, and false boxes added — ``false_rate`` × the frame's true
    boxes on average, placed at random (half of them persisting 1–3 frames, like a glint)."""
    rng = np.random.default_rng(seed)
    out = []
    glints: list[list[float]] = []  # x1, y1, x2, y2, frames left
    for _, gb in frames:
        gb = np.asarray(gb, np.float64).reshape(-1, 4)
        keep = rng.random(len(gb)) >= drop
        b = gb[keep].copy()
        wh = b[:, 2:] - b[:, :2]
        b += rng.normal(0, jitter, b.shape) * np.concatenate([wh, wh], 1)
        s = np.clip(rng.normal(0.8, 0.12, len(b)), 0.3, 1.0)
        nf = rng.poisson(false_rate * max(len(gb), 1))
        for _ in range(nf):
            w = float(rng.uniform(5, 20))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - w))
            glints.append([x, y, x + w, y + w * 0.7, int(rng.integers(1, 4)) if rng.random() < 0.5 else 1])
        fb = np.array([g[:4] for g in glints], np.float64).reshape(-1, 4)
        fs = np.clip(rng.normal(0.6, 0.15, len(fb)), 0.1, 0.95)
        for g in glints:
            g[4] -= 1
        glints = [g for g in glints if g[4] > 0]
        out.append((np.concatenate([b, fb]), np.concatenate([s, fs])))
    return out
