"""Torch-free OpenVINO predictor: the same model (``model.onnx``, or its IR ``model.xml``/``.bin``)
on Intel's CPU runtime, in fp32 or bf16 (where the CPU has AVX-512 BF16 / AMX), and INT8 IRs from
``flowdet export --int8 --backend openvino``.

Same interface as :class:`flowdet.runtime.predict.onnx_runtime.OnnxPredictor`: ``predict`` (letterbox in,
shared NMS/rescale out via :class:`BatchedPredictor`), ``infer``, ``names``, ``img_size``, ``meta``.
The metadata is the flowdet contract (:mod:`flowdet.runtime.predict.metadata`): OpenVINO keeps an ONNX
file's ``metadata_props`` under ``rt_info["framework"]``; an IR written by flowdet holds them there
too (``save_model`` keeps them), plus the export gate's result.

OpenVINO is an optional extra (``pip install 'flowdet[openvino]'``); without it this module still
imports and :class:`OpenVinoPredictor` raises :class:`flowdet.errors.MissingDependency`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.errors import InputError, ModelFileError
from flowdet.runtime.predict.backend import BatchedPredictor
from flowdet.runtime.predict.layouts import FLOWDET, detect_layout

PRECISIONS = ("fp32", "bf16")
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def import_openvino() -> Any:
    from flowdet.utils import require

    return require("openvino", "openvino")


def read_props(model: Any) -> dict[str, str]:
    """The flowdet metadata of an OpenVINO model read from ONNX or IR (``rt_info["framework"]``)."""
    if not model.has_rt_info(["framework"]):
        return {}
    keys = list(model.get_rt_info(["framework"]).astype(dict))
    return {k: str(model.get_rt_info(["framework", k]).astype(str)) for k in keys}


def write_props(model: Any, props: dict[str, str]) -> None:
    """Store metadata where :func:`read_props` (and OpenVINO's ONNX reader) puts it."""
    for k, v in props.items():
        model.set_rt_info(str(v), ["framework", k])


def bf16_supported(core: Any | None = None) -> bool:
    """Whether this CPU runs bf16 natively (OpenVINO's capability list; AVX-512 BF16 or AMX)."""
    ov = import_openvino()
    core = core or ov.Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoPredictor(BatchedPredictor):
    """:class:`flowdet.runtime.predict.predictor.Predictor` on OpenVINO (CPU).

    ``path``: ``model.onnx`` or an IR ``model.xml`` (with ``model.bin`` beside it).
    ``precision``: "fp32" (INFERENCE_PRECISION_HINT f32: exact; OpenVINO would otherwise pick bf16
    by itself on an AMX CPU) or "bf16" (refused on a CPU without native bf16); None = what the
    model's metadata says (``runtime_precision``, set by ``flowdet export --precision``), else fp32.
    ``threads``: INFERENCE_NUM_THREADS (None = OpenVINO's default, all cores).
    ``max_batch``: chunk size when the model has a dynamic batch axis.
    """

    def __init__(self, path: str | Path, precision: str | None = None, threads: int | None = None,
                 max_batch: int = 8, device: str = "CPU"):
        from flowdet.core import validate

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: model not found")
        if precision is not None and precision not in PRECISIONS:
            raise InputError(f"--precision {precision}: OpenVINO runs {' or '.join(PRECISIONS)}", field="--precision")
        validate.threads(threads)
        ov = import_openvino()
        core = ov.Core()
        if self.path.suffix == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise ModelFileError(f"{self.path.with_suffix('.bin')}: the IR's weights file is missing")
        try:
            model = core.read_model(str(self.path))
        except Exception as e:  # OpenVINO raises RuntimeError subclasses with long multi-line texts
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelFileError(f"{self.path}: not a loadable ONNX/IR model ({msg})") from None
        self.props = read_props(model)
        in_ports, out_ports = [_Port(p) for p in model.inputs], [_Port(p) for p in model.outputs]
        # flowdet's own graph, or an ultralytics export (raw [B, 4+nc, N] / end-to-end [B, N, 6])
        found = detect_layout({o.name: list(o.shape or []) for o in out_ports}, self.props, str(self.path),
                              input_shape=in_ports[0].shape)
        self.meta = found.meta
        self.names, self.cat_ids = self.meta.names, self.meta.cat_ids
        self.img_size: tuple[int, int] = self.meta.img_size
        if precision is None:
            precision = self.props.get("runtime_precision", "fp32")
            precision = precision if precision in PRECISIONS else "fp32"
            if precision == "bf16" and not bf16_supported(core):
                precision = "fp32"  # the exporter's CPU had bf16, this one has not: run exact fp32
        elif precision == "bf16" and not bf16_supported(core):
            raise InputError("--precision bf16: this CPU has no native bf16 (AVX-512 BF16 / AMX); use fp32",
                             field="--precision")
        if found.kind == FLOWDET:  # layout None: flowdet's own decoding in BatchedPredictor
            out_names = [o.name for o in out_ports]
            if out_names[:2] != ["boxes", "scores"]:
                raise ModelFileError(f"{self.path}: outputs are {out_names}, expected ['boxes', 'scores']")
            validate.onnx_io(in_ports, out_ports, self.meta, str(self.path))
            self.run_outputs = ["boxes", "scores"]
        else:
            self.layout = found
            self.run_outputs = [found.output]
        batch_dim = model.inputs[0].get_partial_shape()[0]
        self.fixed_batch: int | None = batch_dim.get_length() if batch_dim.is_static else None
        self.max_batch = self.fixed_batch or max(1, int(max_batch))
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core.compile_model(model, device, config)
        except Exception as e:
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelFileError(f"{self.path}: OpenVINO could not compile the model for {device} ({msg})") from None
        self.request = self.compiled.create_infer_request()
        self.precision, self.threads, self.device = precision, threads, device
        self.providers = [f"openvino:{device}:{precision}"]  # what OnnxPredictor reports as its EPs

    @property
    def dynamic_batch(self) -> bool:
        return self.fixed_batch is None

    def _run(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = self.request.infer({0: np.ascontiguousarray(chunk, dtype=np.float32)})
        return tuple(res[self.compiled.output(name)] for name in self.run_outputs)

    def __repr__(self) -> str:
        kind = f"layout={self.layout.kind}, " if self.layout else ""
        return (f"OpenVinoPredictor({self.path.name}, {kind}size={self.meta.model_size}, img_size={self.img_size}, "
                f"batch={'dynamic' if self.dynamic_batch else self.fixed_batch}, {self.device} {self.precision}, "
                f"threads={self.threads or 'default'})")


class _Port:
    """An OpenVINO input/output seen the way :func:`flowdet.core.validate.onnx_io` reads onnxruntime's."""

    _TYPES = {"f32": "tensor(float)", "f16": "tensor(float16)"}

    def __init__(self, port: Any):
        self.name = port.get_any_name()
        et = port.get_element_type().get_type_name()
        self.type = self._TYPES.get(et, f"tensor({et})")
        ps = port.get_partial_shape()
        self.shape = None if ps.rank.is_dynamic else [d.get_length() if d.is_static else "dynamic" for d in ps]
