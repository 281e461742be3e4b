"""The one predictor interface that every backend implements (PyTorch, ONNX Runtime, TensorRT),
and ``load_predictor``, which picks the backend from the model file."""
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


def load_predictor(path: str, img_size: int | str | tuple[int, int] | None = None, device: str = "auto",
                   threads: int | None = None) -> Predictor:
    """Pick the backend from the file: ``.onnx`` → ONNX Runtime (torch-free), ``.engine`` → TensorRT,
    anything else (``.pt``) → PyTorch. Backends are imported here, when asked for, so the runtime
    never imports torch unless given a PyTorch checkpoint (``flowdet.detect.torch_predictor``).

    ``img_size`` (640, "960x544" = W×H, or (H, W)) sets a .pt's input size; an exported model's size
    is fixed at export, so a different one is refused rather than silently ignored.

    ``device`` (:mod:`flowdet.devices`: auto, cpu, cuda, cuda:N, N) applies to every backend: an
    ONNX model asked for ``cuda`` gets the CUDA provider or a one-line error saying why not."""
    from flowdet import validate

    validate.threads(threads)
    if str(path).endswith((".onnx", ".engine")):
        if str(path).endswith(".onnx"):
            from flowdet.runtime.onnx_runtime import OnnxPredictor

            from flowdet.devices import onnx_providers

            pred: Predictor = OnnxPredictor(path, providers=onnx_providers(device), threads=threads)
        else:
            from flowdet.runtime.tensorrt import TensorRTPredictor

            from flowdet.devices import parse_device

            if parse_device(device)[0] == "cpu":
                from flowdet.errors import InputError

                raise InputError("a TensorRT engine runs on the GPU only; use the .onnx for the CPU",
                                 path=path, field="--device")
            pred = TensorRTPredictor(path)
        if img_size:
            from flowdet.data.letterbox import format_img_size, parse_img_size
            from flowdet.errors import InputError

            want = parse_img_size(img_size)
            if tuple(want) != tuple(pred.img_size):
                raise InputError(f"the model's input size is fixed at {format_img_size(pred.img_size)} "
                                 f"(asked {format_img_size(want)}); re-export the checkpoint with --img-size",
                                 path=path, field="--img-size")
        return pred
    from flowdet.detect.torch_predictor import TorchPredictor

    return TorchPredictor(path, img_size=img_size, device=device)
