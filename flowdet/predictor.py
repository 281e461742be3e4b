"""The one predictor interface that every backend implements (PyTorch, ONNX Runtime, TensorRT)."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from flowdet.ops.postprocess import Detections


class Predictor(Protocol):
    """``predict`` takes BGR uint8 images of any size and returns detections in their pixels."""

    names: list[str]
    img_size: tuple[int, int]

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65) -> list[Detections]:
        ...


def load_predictor(path: str, img_size: int | None = None, device: str = "cpu", threads: int | None = None) -> Predictor:
    """Pick the backend from the file: ``.onnx`` → ONNX Runtime (torch-free), ``.pt`` → PyTorch."""
    from flowdet import validate

    validate.threads(threads)
    if img_size is not None:
        validate.img_size(img_size)
    if str(path).endswith(".onnx"):
        from flowdet.export.runtime import OnnxPredictor

        return OnnxPredictor(path, threads=threads)
    if str(path).endswith(".engine"):
        from flowdet.export.tensorrt import TensorRTPredictor

        return TensorRTPredictor(path)
    from flowdet.detect.predict import TorchPredictor

    return TorchPredictor(path, img_size=img_size, device=device)
