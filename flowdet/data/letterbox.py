"""Letterbox resize — the one preprocessing shared by training, eval, export parity and runtime.

Contract (also the ONNX input contract, see docs/architecture.md): the image is resized by
``r = min(H/h, W/w)`` keeping aspect ratio, placed at the **top-left** of an ``H×W`` canvas filled
with 114, kept **BGR**, as float32 **0–255** (no mean/std), laid out [3, H, W]. A box maps to the
canvas by ``xyxy * r``; back by ``/ r`` then clipping to the original image.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

PAD_VALUE = 114


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


def parse_img_size(value: object, field: str = "--img-size") -> tuple[int, int]:
    """An input size as users write it → (H, W).

    ``640`` or ``"640"`` → (640, 640); ``"960x544"`` (W×H, as ultralytics/ffmpeg write sizes) →
    (544, 960); a pair ``[H, W]`` → (H, W). Each side must be a multiple of 32 (the largest stride),
    at least 32 and at most 8192. Raises :class:`flowdet.errors.InputError` naming ``field``."""
    from flowdet.errors import InputError

    def bad(why: str) -> InputError:
        return InputError(f"{value!r} is not an input size: {why} (e.g. 640, or 960x544 = width x height)",
                          field=field)

    if isinstance(value, bool):
        raise bad("expected a number")
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise bad("expected [H, W]")
        parts = list(value)
    elif isinstance(value, (int, float)):
        parts = [value, value]
    elif isinstance(value, str):
        text = value.strip().lower().replace("×", "x")
        if "x" in text:
            w_s, _, h_s = text.partition("x")
            parts = [h_s.strip(), w_s.strip()]
        else:
            parts = [text, text]
    else:
        raise bad(f"unexpected type {type(value).__name__}")
    sides = []
    for p in parts:
        try:
            f = float(p)
        except (TypeError, ValueError):
            raise bad(f"{p!r} is not a number") from None
        if not math.isfinite(f) or f != int(f):  # NaN, inf or fractional
            raise bad(f"{p!r} is not a whole number")
        sides.append(int(f))
    for s in sides:
        if s < 32 or s > 8192 or s % 32:
            raise bad(f"each side must be a multiple of 32 between 32 and 8192, got {s}")
    return sides[0], sides[1]


def format_img_size(hw: tuple[int, int]) -> str:
    """(H, W) → "640" when square, else "WxH" (the way --img-size is written)."""
    h, w = int(hw[0]), int(hw[1])
    return str(h) if h == w else f"{w}x{h}"
