"""What every deployed backend shares (torch-free): batch chunking/padding and the predict path.

A backend subclasses :class:`BatchedPredictor` and implements ``_run(chunk)`` for one chunk of at
most ``max_batch`` images (exactly ``fixed_batch`` when the model has a fixed batch dimension).
Preprocessing (letterbox) and postprocessing (NMS, rescale) are the shared torch-free ones, chosen
by ``layout`` (:mod:`flowdet.runtime.predict.layouts`): None = flowdet's own graph, whose ``_run`` returns
``(boxes, scores)``; a foreign layout (an ultralytics export) returns the one output it decodes.
"""
from __future__ import annotations

import numpy as np

from flowdet.core.detections import Detections
from flowdet.runtime.predict.layouts import Layout, decode_outputs, preprocess


class BatchedPredictor:
    max_batch: int = 8
    fixed_batch: int | None = None
    img_size: tuple[int, int]
    layout: Layout | None = None  # None: flowdet's own outputs (boxes, scores)

    def _run(self, chunk: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """[B, 3, H, W] float32 → the outputs ``_run`` returns, over the whole batch, in chunks of
        ``max_batch`` (flowdet: boxes [B, N, 4], scores [B, N, C]; a fixed-batch model gets its last
        chunk zero-padded; the padding is dropped)."""
        parts: list[list[np.ndarray]] = []
        for i in range(0, batch.shape[0], self.max_batch):
            chunk = batch[i:i + self.max_batch]
            n = chunk.shape[0]
            if self.fixed_batch and n < self.fixed_batch:
                chunk = np.concatenate([chunk, np.zeros((self.fixed_batch - n, *chunk.shape[1:]), chunk.dtype)])
            outs = self._run(chunk)
            parts = parts or [[] for _ in outs]
            for acc, o in zip(parts, outs):
                acc.append(np.asarray(o[:n], np.float32))
        return tuple(np.concatenate(acc) for acc in parts)

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65,
                max_det: int = 1000) -> list[Detections]:
        """BGR uint8 images of any size → detections in their own pixels."""
        if not images:
            return []
        batch, transforms = preprocess(images, self.img_size, self.layout)
        return decode_outputs(self.infer(batch), self.layout, transforms, [im.shape[:2] for im in images], conf=conf,
                              iou=iou, max_det=max_det)
