"""Non-maximum suppression in numpy (the runtime's and the training side's single NMS)."""
from __future__ import annotations

import numpy as np

from flowdet.core.boxes import box_area


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS. boxes [N, 4] xyxy, scores [N] → kept indices sorted by descending score."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    areas = box_area(boxes)
    # One contiguous array per coordinate: gathering 1-D columns is several times cheaper than
    # fancy-indexing the [N, 4] array twice per kept box (thousands of candidates at low conf).
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k]) for k in range(4))
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_thr: float) -> np.ndarray:
    """Class-aware NMS by offsetting each class's boxes so they never overlap another class's."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    offset = (np.asarray(class_ids, dtype=np.float32) * (float(boxes.max()) + 1.0))[:, None]
    return nms(boxes + offset, scores, iou_thr)
