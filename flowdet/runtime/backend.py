"""What every deployed backend shares (torch-free): batch chunking/padding and the predict path.

A backend subclasses :class:`BatchedPredictor` and implements ``_run(chunk)`` for one chunk of at
most ``max_batch`` images (exactly ``fixed_batch`` when the model has a fixed batch dimension).
Preprocessing (letterbox) and postprocessing (NMS, rescale) are the shared torch-free ones.
"""
from __future__ import annotations

import numpy as np

from flowdet.data.letterbox import preprocess_batch
from flowdet.ops.postprocess import Detections, postprocess


class BatchedPredictor:
    max_batch: int = 8
    fixed_batch: int | None = None
    img_size: tuple[int, int]

    def _run(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, 3, H, W] float32 → (boxes [B, N, 4], scores [B, N, C]) in chunks of ``max_batch``
        (a fixed-batch model gets its last chunk zero-padded; the padding is dropped)."""
        boxes, scores = [], []
        for i in range(0, batch.shape[0], self.max_batch):
            chunk = batch[i:i + self.max_batch]
            n = chunk.shape[0]
            if self.fixed_batch and n < self.fixed_batch:
                chunk = np.concatenate([chunk, np.zeros((self.fixed_batch - n, *chunk.shape[1:]), chunk.dtype)])
            b, s = self._run(chunk)
            boxes.append(np.asarray(b[:n], np.float32))
            scores.append(np.asarray(s[:n], np.float32))
        return np.concatenate(boxes), np.concatenate(scores)

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65,
                max_det: int = 1000) -> list[Detections]:
        """BGR uint8 images of any size → detections in their own pixels."""
        if not images:
            return []
        batch, ratios = preprocess_batch(images, self.img_size)
        boxes, scores = self.infer(batch)
        return postprocess(boxes, scores, ratios, [im.shape[:2] for im in images], conf_thr=conf, iou_thr=iou,
                           max_det=max_det)
