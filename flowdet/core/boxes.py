"""Box format conversions and pairwise IoU in numpy (torch-free; the runtime uses these)."""
from __future__ import annotations

import numpy as np


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """COCO [x, y, w, h] → [x1, y1, x2, y2]; shape [..., 4]."""
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:4]], axis=-1)


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:4] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b)
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b)
    return np.concatenate([(b[..., :2] + b[..., 2:4]) / 2, b[..., 2:4] - b[..., :2]], axis=-1)


def clip_xyxy(b: np.ndarray, width: float, height: float) -> np.ndarray:
    out = np.array(b, dtype=np.float64, copy=True)
    out[..., [0, 2]] = out[..., [0, 2]].clip(0, width)
    out[..., [1, 3]] = out[..., [1, 3]].clip(0, height)
    return out


def box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_intersection(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas of xyxy boxes a [N, 4], b [M, 4] → ([N, M], areas [N], areas [M])."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(rb - lt, 0, None), axis=-1), box_area(a), box_area(b)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: a [N, 4], b [M, 4] → [N, M]."""
    inter, area_a, area_b = box_intersection(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def box_overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection / the smaller box's area, xyxy a [N, 4], b [M, 4] → [N, M]: 1 when one box
    lies inside the other, whatever their sizes (IoU of a part and its whole is small)."""
    inter, area_a, area_b = box_intersection(a, b)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-12)
