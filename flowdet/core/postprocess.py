"""Decoded model outputs → final detections in original-image pixels (numpy, shared by all backends).

Every backend (PyTorch, ONNX Runtime, TensorRT) produces the same two arrays per batch:
``boxes`` [B, N, 4] xyxy in letterboxed input pixels and ``scores`` [B, N, C] (obj × cls).
This module turns them into :class:`Detections`, so backends cannot drift in postprocessing.

Model outputs are untrusted input (a broken export, an fp16 overflow, a foreign graph): a candidate
that passes the score threshold but is not a detection — a non-finite coordinate, x2 <= x1 or
y2 <= y1, a score that is not finite or not in [0, 1], a class id outside the model's classes — is
dropped here and counted in :attr:`Detections.invalid` (:func:`valid_outputs` is the one rule), so no
NaN reaches a json file and callers can say how many they dropped (:func:`invalid_message`).
"""
from __future__ import annotations

import numpy as np

from flowdet.core.boxes import clip_xyxy
from flowdet.core.detections import Detections
from flowdet.core.nms import batched_nms, nms

# A score is a probability; the slack covers fp16 rounding of a sigmoid product.
SCORE_MAX = 1.0 + 1e-3


def valid_outputs(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray | None = None,
                  num_classes: int | None = None) -> np.ndarray:
    """[K] bool: which candidates are detections at all — 4 finite coordinates with x2 > x1 and
    y2 > y1, a finite score in [0, SCORE_MAX], a class id in [0, num_classes) (when given)."""
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
              & np.isfinite(scores) & (scores >= 0) & (scores <= SCORE_MAX))
        if class_ids is not None and num_classes is not None:
            ok &= np.isfinite(class_ids) & (class_ids >= 0) & (class_ids < num_classes)
    return ok


def candidates(scores: np.ndarray, conf_thr: float, strict: bool = False) -> np.ndarray:
    """Indices of the scores over the threshold, plus the non-finite ones (NaN passes no threshold,
    so without this a NaN-emitting model would look like a model that sees nothing)."""
    with np.errstate(invalid="ignore"):
        over = scores > conf_thr if strict else scores >= conf_thr
    return np.flatnonzero(over | ~np.isfinite(scores))


def invalid_message(n: int) -> str:
    """The one line a run prints when it dropped invalid model outputs."""
    return (f"the model emitted {n} invalid detection(s) over the threshold (non-finite or empty boxes, scores "
            f"outside [0, 1] or class ids outside its classes): dropped, not written or scored")


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
        m = candidates(best, conf_thr)
        b, s, c = boxes[i][m], best[m], cls[m]
        ok = valid_outputs(b, s)
        invalid = int(ok.size - ok.sum())
        b, s, c = b[ok], s[ok], c[ok]
        if b.shape[0]:
            keep = nms(b, s, iou_thr) if class_agnostic else batched_nms(b, s, c, iou_thr)
            keep = keep[:max_det]
            b, s, c = b[keep], s[keep], c[keep]
        h, w = orig_sizes[i]
        b = clip_xyxy(b / ratios[i], w, h).astype(np.float32)
        results.append(Detections(b, s.astype(np.float32), c.astype(np.int64), invalid))
    return results
