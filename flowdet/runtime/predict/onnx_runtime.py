"""Torch-free ONNX Runtime predictor: the edge box's inference path.

Imports only numpy, cv2 (through flowdet.core.letterbox), onnxruntime and flowdet's torch-free
modules; ``tests/runtime/test_torch_free.py`` proves it imports with torch unimportable. Everything the
predictor needs (class names, input size, letterbox contract) comes from the model's metadata.
Besides flowdet's own exports it runs ultralytics detect exports (raw ``[1, 4+nc, N]`` and
end-to-end ``[1, N, 6]``), recognised by :func:`flowdet.runtime.predict.layouts.detect_layout`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flowdet.errors import InputError, ModelFileError
from flowdet.runtime.predict.backend import BatchedPredictor
from flowdet.runtime.predict.layouts import FLOWDET, detect_layout

_SHORT = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_ORT_DTYPE = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def resolve_providers(providers: Sequence[str] | str | None) -> list[str]:
    """None/"auto" → CUDA when this onnxruntime build has it, then CPU. TensorRT EP is opt-in
    ("tensorrt") because it builds an engine at session creation (minutes on a Jetson)."""
    available = ort.get_available_providers()
    if providers is None or providers == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if isinstance(providers, str):
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    out: list = []
    for p in providers:
        if isinstance(p, tuple):  # (name, options), e.g. ("CUDAExecutionProvider", {"device_id": 1})
            if p[0] not in available:
                raise InputError(f"onnxruntime provider '{p[0]}' is not available in this build "
                                 f"(available: {', '.join(available)})")
            out.append(p)
            continue
        name = _SHORT.get(p.lower(), p)
        if name not in available:
            raise InputError(
                f"onnxruntime provider '{p}' is not available in this build (available: {', '.join(available)})")
        out.append(name)
    if "CPUExecutionProvider" not in [q[0] if isinstance(q, tuple) else q for q in out]:
        out.append("CPUExecutionProvider")  # fallback for nodes the accelerator EP cannot take
    return out


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    # Spinning intra-op workers busy-wait between runs; on a small box they steal the core the
    # video decoder needs (measured: ~2x stream latency on 2 cores), so streaming turns it off.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return so


class OnnxPredictor(BatchedPredictor):
    """:class:`flowdet.runtime.predict.predictor.Predictor` on ONNX Runtime.

    ``providers``: None/"auto" (CUDA if available, else CPU), or names ("cpu", "cuda", "tensorrt" or
    full EP names). ``threads``: intra-op threads (None = onnxruntime's default, all cores).
    ``spinning``: allow intra-op thread spinning (fastest for back-to-back calls on an idle box;
    turn off when another thread, e.g. a video decoder, shares the cores).
    ``max_batch``: chunk size when the model has a dynamic batch axis.
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | str | None = None, threads: int | None = None,
                 spinning: bool = True, max_batch: int = 8):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: model not found")
        chosen = resolve_providers(providers)
        so = session_options(threads, spinning)
        try:
            try:
                self.session = ort.InferenceSession(str(self.path), so, providers=chosen)
            except Exception:
                if chosen != ["CPUExecutionProvider"] and providers in (None, "auto"):
                    self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
                else:
                    raise
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ModelFileError(f"{self.path}: not a loadable ONNX model ({msg})") from None
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        inp = self.session.get_inputs()[0]
        outputs = self.session.get_outputs()
        found = detect_layout({o.name: list(o.shape or []) for o in outputs}, props, str(self.path),
                              input_shape=inp.shape)
        self.meta = found.meta
        self.names, self.cat_ids = self.meta.names, self.meta.cat_ids
        self.img_size: tuple[int, int] = self.meta.img_size
        self.input_name = inp.name
        self.output_names = [o.name for o in outputs]
        if found.kind == FLOWDET:  # layout None: flowdet's own decoding in BatchedPredictor
            if self.output_names[:2] != ["boxes", "scores"]:
                raise ModelFileError(f"{self.path}: outputs are {self.output_names}, expected ['boxes', 'scores']")
            from flowdet.core import validate

            validate.onnx_io(self.session.get_inputs(), outputs, self.meta, str(self.path))
            self.run_outputs = self.output_names[:2]
        else:
            self.layout = found
            self.run_outputs = [found.output]
        self.input_dtype = _ORT_DTYPE.get(inp.type, np.float32)
        # A symbolic (str/None) batch dimension means any batch size; an int is a fixed batch.
        self.fixed_batch: int | None = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.max_batch = self.fixed_batch or max(1, int(max_batch))
        self.providers = self.session.get_providers()

    @property
    def dynamic_batch(self) -> bool:
        return self.fixed_batch is None

    def _run(self, chunk: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(self.run_outputs, {self.input_name: chunk.astype(self.input_dtype, copy=False)}))

    def __repr__(self) -> str:
        kind = f"layout={self.layout.kind}, " if self.layout else ""
        return (f"OnnxPredictor({self.path.name}, {kind}size={self.meta.model_size}, img_size={self.img_size}, "
                f"batch={'dynamic' if self.dynamic_batch else self.fixed_batch}, providers={self.providers})")
