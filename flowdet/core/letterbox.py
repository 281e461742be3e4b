"""Letterbox resize — the one preprocessing shared by training, eval, export parity and runtime.

Contract (also the ONNX input contract, see docs/architecture.md): the image is resized by
``r = min(H/h, W/w)`` keeping aspect ratio, placed at the **top-left** of an ``H×W`` canvas filled
with 114 (``PAD_VALUE``), kept **BGR**, as float32 **0–255** (no mean/std), laid out [3, H, W]. A box
maps to the canvas by ``xyxy * r``; back by ``/ r`` then clipping to the original image.
"""
from __future__ import annotations

import cv2
import numpy as np

from flowdet.core.defaults import PAD_VALUE


def letterbox(img: np.ndarray, size: tuple[int, int] | int, pad_value: int = PAD_VALUE) -> tuple[np.ndarray, float]:
    """img HxWx3 uint8 BGR → (canvas [H, W, 3] uint8, ratio r). ``size`` is (H, W) or an int."""
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = img.shape[:2]
    r = min(th / h, tw / w)
    nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
    canvas = np.full((th, tw, 3), pad_value, dtype=np.uint8)
    interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=interp) if (nh, nw) != (h, w) else img
    return canvas, r


def to_chw_float(canvas: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 → [3, H, W] float32 0–255 (contiguous)."""
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)


def preprocess_batch(images: list[np.ndarray], size: tuple[int, int] | int) -> tuple[np.ndarray, list[float]]:
    """List of BGR images → ([B, 3, H, W] float32, ratios)."""
    outs, ratios = [], []
    for im in images:
        canvas, r = letterbox(im, size)
        outs.append(to_chw_float(canvas))
        ratios.append(r)
    return np.stack(outs), ratios
