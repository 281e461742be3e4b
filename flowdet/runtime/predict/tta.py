"""Test-time augmentation for an offline teacher: the horizontal flip.

:class:`FlipPredictor` wraps any :class:`flowdet.runtime.predict.predictor.Predictor`: every image runs as is
and mirrored (one ``predict`` call, so the backend batches both), the mirrored boxes are flipped back
and the two views merged with :func:`flowdet.runtime.predict.tiles.merge` (the same rule tiles use). It
composes with :class:`flowdet.runtime.predict.tiles.TiledPredictor` (``TiledPredictor(FlipPredictor(p), …)``
flips every tile). Twice the inference per image: for pseudo-labelling (``flowdet pseudo-label
--tta flip``), not for the edge box's live loop. Torch-free.
"""
from __future__ import annotations

import numpy as np

from flowdet.core.detections import Detections
from flowdet.runtime.predict.tiles import merge


def unflip(det: Detections, width: int) -> Detections:
    """Boxes found on a horizontally mirrored image of ``width`` px → boxes on the image itself."""
    if not len(det):
        return det
    b = det.boxes.astype(np.float32).copy()
    b[:, [0, 2]] = width - det.boxes[:, [2, 0]]
    return Detections(b, det.scores, det.class_ids)


class FlipPredictor:
    """``predict`` = the base predictor on each image and on its mirror, merged.

    ``merge``: "nms" (the better-scored box of an object) or "wbf" (its boxes averaged, weighted by score,
    the score the higher: both views see the whole object, and averaging steadies a box; a Python loop,
    slow on thousands of boxes);
    ``merge_iou``: IoU at which two views' boxes are one object (None = the ``iou`` given to ``predict``)."""

    def __init__(self, base, merge: str = "nms", merge_iou: float | None = None):
        if merge not in ("nms", "wbf"):
            raise ValueError(f"merge method must be 'nms' or 'wbf', got {merge!r}")
        self.base, self.merge, self.merge_iou = base, merge, merge_iou
        self.names, self.img_size = base.names, base.img_size
        self.cat_ids = getattr(base, "cat_ids", None)

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65,
                max_det: int = 1000) -> list[Detections]:
        mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in images]
        dets = self.base.predict(list(images) + mirrored, conf=conf, iou=iou)
        n = len(images)
        m_iou = self.merge_iou if self.merge_iou is not None else iou
        return [merge([dets[i], unflip(dets[n + i], im.shape[1])], m_iou, self.merge, max_det)
                for i, im in enumerate(images)]
