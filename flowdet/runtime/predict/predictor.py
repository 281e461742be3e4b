"""The one predictor interface that every backend implements (PyTorch, ONNX Runtime, OpenVINO, TensorRT),
and ``load_predictor``, which picks the backend from the model file."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from flowdet.core.detections import Detections


class Predictor(Protocol):
    """``predict`` takes BGR uint8 images of any size and returns detections in their pixels."""

    names: list[str]
    img_size: tuple[int, int]

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65) -> list[Detections]:
        ...


BACKENDS = ("onnxruntime", "openvino")
DEFAULT_CONF = 0.25  # predict's score threshold when neither --conf nor the model gives one (ultralytics: 0.25)


def stored_conf(predictor: Predictor) -> tuple[float | None, str]:
    """(the best-F1 threshold the model stores — a checkpoint's evaluation or the exported
    metadata — or None, where it comes from)."""
    meta = getattr(predictor, "meta", None)
    best = getattr(predictor, "best_conf", None)
    if best is not None:
        return best, getattr(predictor, "best_conf_from", "")
    return getattr(meta, "best_conf", None), getattr(meta, "best_conf_from", "")


def default_conf(predictor: Predictor) -> tuple[float, str]:
    """(threshold, why) when no ``--conf`` is given: :func:`stored_conf`, else :data:`DEFAULT_CONF`."""
    best, why = stored_conf(predictor)
    if best is not None:
        return float(best), f"the best-F1 threshold stored in the model ({why})" if why else \
            "the best-F1 threshold stored in the model"
    return DEFAULT_CONF, "the default; the model stores no best-F1 threshold"


def resolve_conf(predictor: Predictor, conf: float | None) -> float:
    """``conf`` when given, else :func:`default_conf`, said in one start line (predict, stream)."""
    if conf is not None:
        return conf
    from flowdet import log

    conf, why = default_conf(predictor)
    log.info(f"conf {conf:.3f}: {why} (--conf to choose)")
    return conf


def nothing_found_hint(predictor: Predictor, conf: float, model: str | Path | None = None) -> str:
    """What to do when the model wrote no box at ``conf``: its stored best-F1 threshold when that is
    lower, else a lower --conf or the threshold `flowdet eval` finds."""
    best, _ = stored_conf(predictor)
    if best is not None and best < conf:
        return f"the model's best-F1 threshold is {best:.3f} (--conf {best:.3f})"
    return (f"try a lower --conf (e.g. 0.1), or the best-F1 threshold `flowdet eval --model {model or 'MODEL'} "
            "--ann VAL.json` prints")


def load_predictor(path: str, img_size: int | str | tuple[int, int] | None = None, device: str = "auto",
                   threads: int | None = None, backend: str | None = None, precision: str | None = None,
                   spinning: bool = True) -> Predictor:
    """Pick the backend from the file: ``.onnx`` → ONNX Runtime (torch-free), ``.xml`` (OpenVINO IR)
    → OpenVINO, ``.engine`` → TensorRT, anything else (``.pt``) → PyTorch. Backends are imported
    here, when asked for, so the runtime never imports torch unless given a PyTorch checkpoint
    (``flowdet.detect.torch_predictor``).

    ``backend``: "onnxruntime" or "openvino" for an ``.onnx`` (None = onnxruntime; an ``.xml`` is
    OpenVINO only). ``precision``: OpenVINO's inference precision, "fp32" or "bf16" (None = the model's
    ``runtime_precision`` metadata, else fp32);
    onnxruntime runs what the file holds, so a precision other than fp32 there is refused.

    ``img_size`` (640, "960x544" = W×H, or (H, W)) sets a .pt's input size; an exported model's size
    is fixed at export, so a different one is refused rather than silently ignored.

    ``device`` (:mod:`flowdet.devices`: auto, cpu, cuda, cuda:N, N) applies to every backend: an
    ONNX model asked for ``cuda`` gets the CUDA provider or a one-line error saying why not
    (OpenVINO here runs on the CPU only)."""
    from flowdet.core import validate
    from flowdet.errors import InputError

    validate.threads(threads)
    p = str(path)
    if backend is not None and backend not in BACKENDS:
        raise InputError(f"--backend {backend}: choose {' or '.join(BACKENDS)}", field="--backend")
    if p.endswith(".xml"):
        backend = backend or "openvino"
    if backend is not None and not p.endswith((".onnx", ".xml")):
        raise InputError(f"--backend {backend} runs an exported .onnx (or OpenVINO .xml), not {p}",
                         path=path, field="--backend")
    if p.endswith(".xml") and backend != "openvino":
        raise InputError("an OpenVINO IR (.xml) runs on --backend openvino only", path=path, field="--backend")
    if precision not in (None, "fp32") and backend != "openvino":
        raise InputError(f"--precision {precision} is an OpenVINO option (add --backend openvino); onnxruntime "
                         "runs the precision the file holds", field="--precision")
    if p.endswith((".onnx", ".engine", ".xml")):
        if backend == "openvino":
            from flowdet.devices import parse_device

            if parse_device(device)[0] not in ("cpu", "auto"):
                raise InputError("--backend openvino runs on the CPU here; use --device cpu", field="--device")
            from flowdet.runtime.predict.openvino_runtime import OpenVinoPredictor

            pred: Predictor = OpenVinoPredictor(path, precision=precision, threads=threads)
        elif p.endswith(".onnx"):
            from flowdet.devices import onnx_providers
            from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

            pred = OnnxPredictor(path, providers=onnx_providers(device), threads=threads, spinning=spinning)
        else:
            from flowdet.devices import parse_device
            from flowdet.runtime.predict.tensorrt import TensorRTPredictor

            if parse_device(device)[0] == "cpu":
                raise InputError("a TensorRT engine runs on the GPU only; use the .onnx for the CPU",
                                 path=path, field="--device")
            pred = TensorRTPredictor(path)
        if img_size:
            from flowdet.core.size import InputSize

            want = InputSize.parse(img_size)
            if want != tuple(pred.img_size):
                raise InputError(f"the model's input size is fixed at {InputSize(*pred.img_size).to_flag()} "
                                 f"(asked {want.to_flag()}); re-export the checkpoint with --img-size",
                                 path=path, field="--img-size")
        return pred
    from flowdet.detect.torch_predictor import TorchPredictor

    return TorchPredictor(path, img_size=img_size, device=device)
