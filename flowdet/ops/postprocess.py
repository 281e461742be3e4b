"""Decoded model outputs → final detections in original-image pixels (numpy, shared by all backends).

Every backend (PyTorch, ONNX Runtime, TensorRT) produces the same two arrays per batch:
``boxes`` [B, N, 4] xyxy in letterboxed input pixels and ``scores`` [B, N, C] (obj × cls).
This module turns them into :class:`Detections`, so backends cannot drift in postprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flowdet.ops.boxes import clip_xyxy
from flowdet.ops.nms import batched_nms, nms


@dataclass
class Detections:
    """One image's detections: boxes [K, 4] xyxy (original pixels), scores [K], class_ids [K]."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_coco(self, image_id: int, cat_ids: list[int] | None = None) -> list[dict]:
        """COCO results entries ([x, y, w, h])."""
        out = []
        for b, s, c in zip(self.boxes, self.scores, self.class_ids):
            cid = int(cat_ids[int(c)]) if cat_ids is not None else int(c)
            out.append({"image_id": int(image_id), "category_id": cid,
                        "bbox": [round(float(b[0]), 3), round(float(b[1]), 3),
                                 round(float(b[2] - b[0]), 3), round(float(b[3] - b[1]), 3)],
                        "score": round(float(s), 5)})
        return out


def postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    ratios: list[float],
    orig_sizes: list[tuple[int, int]],
    conf_thr: float = 0.25,
    iou_thr: float = 0.65,
    max_det: int = 1000,
    class_agnostic: bool = False,
) -> list[Detections]:
    """boxes [B, N, 4], scores [B, N, C] → per-image Detections; orig_sizes are (h, w)."""
    results = []
    for i in range(boxes.shape[0]):
        sc = scores[i]
        cls = sc.argmax(axis=1)
        best = sc[np.arange(sc.shape[0]), cls]
        m = best >= conf_thr
        b, s, c = boxes[i][m], best[m], cls[m]
        if b.shape[0]:
            keep = nms(b, s, iou_thr) if class_agnostic else batched_nms(b, s, c, iou_thr)
            keep = keep[:max_det]
            b, s, c = b[keep], s[keep], c[keep]
        h, w = orig_sizes[i]
        b = clip_xyxy(b / ratios[i], w, h).astype(np.float32)
        results.append(Detections(b, s.astype(np.float32), c.astype(np.int64)))
    return results
