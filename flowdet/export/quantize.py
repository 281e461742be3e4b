"""Static INT8 quantization of an exported fp32 ``model.onnx``, calibrated on real frames.

Two ways, both per-channel weights and Conv/Gemm/MatMul only (depthwise included):

- ``onnxruntime``: QDQ format (``onnxruntime.quantization.quantize_static``, U8 activations, S8
  weights — the VNNI kernels' layout), written as ``.onnx`` that plain onnxruntime runs;
- ``openvino``: NNCF post-training quantization of the OpenVINO model read from the ONNX, written
  as an IR ``.xml`` + ``.bin`` (needs the ``openvino`` extra).

Kept in fp32 either way: the box/score prediction convs of the head (``reg_preds``, ``obj_preds``,
``cls_preds``: a few 1×1 convs, cheap, and where quantization error turns straight into box
pixels and scores) and everything after them (grid decode, exp, sigmoid — not Conv, so never
quantized). The calibration frames go through the runtime's own letterbox.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from flowdet import log as _log
from flowdet.errors import FlowdetError, InputError
from flowdet.utils import require

QUANT_OPS = ["Conv", "Gemm", "MatMul"]
# The head's final prediction convs, by the names the TorchScript exporter gives them.
HEAD_PATTERN = r".*/head/(reg_preds|obj_preds|cls_preds)\.\d+/.*"
METHODS = ("onnxruntime", "openvino")
PRESETS = ("mixed", "performance")
OVERFLOW_FIXES = ("first_layer", "enable", "disable")


@dataclass(frozen=True)
class OvQuantOptions:
    """NNCF settings of the OpenVINO INT8 path (the defaults are the gate's).

    ``conv_only``: quantize the inputs of Conv/MatMul only (True) or also those of Add / Concat /
    MaxPool / Resize, NNCF's own CPU pattern (False). ``preset``: "mixed" (asymmetric activations)
    or "performance" (symmetric). ``head_fp32``: keep the head's prediction convs fp32.
    ``pointwise_fp32``: keep the 1×1 convs fp32 (without VNNI their INT8 kernels are barely faster).
    ``overflow_fix``: NNCF's 7-bit weights against int16 saturation on CPUs without VNNI —
    "first_layer", "enable" (every layer) or "disable". ``fast_bias_correction``: NNCF's fast
    (True) or full bias correction.
    """

    conv_only: bool = True
    preset: str = "mixed"
    head_fp32: bool = True
    pointwise_fp32: bool = False
    overflow_fix: str = "first_layer"
    fast_bias_correction: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"INT8 preset {self.preset!r}: choose {' or '.join(PRESETS)}")
        if self.overflow_fix not in OVERFLOW_FIXES:
            raise InputError(f"INT8 overflow fix {self.overflow_fix!r}: choose {', '.join(OVERFLOW_FIXES)}")


def fp32_head_nodes(onnx_path: str | Path) -> list[str]:
    """Names of the Conv nodes kept in fp32 (the head's box / objectness / class predictions)."""
    onnx = require("onnx")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv" and re.match(HEAD_PATTERN, n.name)]


def _set_props(proto, props: dict[str, str]) -> None:
    have = {p.key: p for p in proto.metadata_props}
    for k, v in props.items():
        if k in have:
            have[k].value = str(v)
        else:
            e = proto.metadata_props.add()
            e.key, e.value = k, str(v)


def quantize_onnxruntime(fp32_onnx: str | Path, out: str | Path, batches: list[np.ndarray],
                         info: dict | None = None, log: Callable[[str], None] = _log.info) -> Path:
    """QDQ INT8 ``out`` from ``fp32_onnx``, calibrated (MinMax) on ``batches`` ([1, 3, H, W] float32)."""
    onnx = require("onnx")
    q = require("onnxruntime.quantization", "train")
    fp32_onnx, out = Path(fp32_onnx), Path(out)
    keep = fp32_head_nodes(fp32_onnx)
    input_name = onnx.load(str(fp32_onnx), load_external_data=False).graph.input[0].name

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self):  # noqa: ANN201 (onnxruntime's interface)
            b = next(self._it, None)
            return None if b is None else {input_name: b}

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.onnx")
    try:
        q.quantize_static(str(fp32_onnx), str(tmp), Reader(), quant_format=q.QuantFormat.QDQ,
                          op_types_to_quantize=QUANT_OPS, per_channel=True, activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8, nodes_to_exclude=keep,
                          calibrate_method=q.CalibrationMethod.MinMax)
        proto = onnx.load(str(tmp))
        n_q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
        meta = {"method": "onnxruntime-qdq", "format": "QDQ U8S8", "per_channel": True, "ops": QUANT_OPS,
                "calibration": "minmax", "fp32_nodes": keep, "quantize_nodes": n_q, **(info or {})}
        _set_props(proto, {"precision": "int8", "quantization": json.dumps(meta)})
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    except FlowdetError:
        raise
    except Exception as e:  # onnxruntime's quantizer raises plain exceptions with long texts
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise FlowdetError(f"onnxruntime quantization failed ({first})", path=fp32_onnx) from None
    finally:
        tmp.unlink(missing_ok=True)
    log(f"int8 (onnxruntime QDQ): {n_q} quantize nodes, {len(keep)} head convs kept fp32 → {out}")
    return out


def _ignored_types(model) -> list[str]:
    """Every op type of the model that is not a Conv/MatMul: NNCF would otherwise also quantize
    inputs of Add / Multiply / Concat / pooling (its CPU config), which the brief keeps fp32."""
    keep = {"Convolution", "GroupConvolution", "MatMul", "Parameter", "Result", "Constant"}
    return sorted({op.get_type_name() for op in model.get_ordered_ops()} - keep)


def _pointwise_convs(model) -> list[str]:
    """Names of the model's 1×1 convolutions (weights [O, I, 1, 1])."""
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Convolution":
            shape = op.input(1).get_partial_shape()
            if shape.is_static and list(shape.to_shape())[2:] == [1, 1]:
                out.append(op.get_friendly_name())
    return out


def quantize_openvino(fp32_onnx: str | Path, out_xml: str | Path, batches: list[np.ndarray],
                      info: dict | None = None, log: Callable[[str], None] = _log.info,
                      options: OvQuantOptions | None = None) -> Path:
    """NNCF INT8 IR ``out_xml`` (+ ``.bin``) from ``fp32_onnx``, calibrated on ``batches``."""
    ov = require("openvino", "openvino")
    nncf = require("nncf", "openvino")
    import logging

    from flowdet.runtime.predict.openvino_runtime import read_props, write_props

    nncf.set_log_level(logging.ERROR)  # NNCF logs every node it skips; our one summary line is enough

    out_xml = Path(out_xml)
    if out_xml.suffix != ".xml":
        raise InputError(f"{out_xml}: an OpenVINO model is an IR, name it .xml", field="--out")
    opt = options or OvQuantOptions()
    model = ov.Core().read_model(str(fp32_onnx))
    props = read_props(model)
    scope = nncf.IgnoredScope(names=_pointwise_convs(model) if opt.pointwise_fp32 else [],
                              patterns=[HEAD_PATTERN] if opt.head_fp32 else [],
                              types=_ignored_types(model) if opt.conv_only else [], validate=False)
    preset = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}[opt.preset]
    fix = {"first_layer": nncf.OverflowFix.FIRST_LAYER, "enable": nncf.OverflowFix.ENABLE,
           "disable": nncf.OverflowFix.DISABLE}[opt.overflow_fix]
    try:
        quantized = nncf.quantize(model, nncf.Dataset(batches), preset=preset, target_device=nncf.TargetDevice.CPU,
                                  subset_size=len(batches), ignored_scope=scope,
                                  fast_bias_correction=opt.fast_bias_correction,
                                  advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=fix))
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise FlowdetError(f"NNCF quantization failed ({first})", path=fp32_onnx) from None
    n_fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ordered_ops())
    n_head = opt.head_fp32 * sum(op.get_type_name() == "Convolution" and bool(re.match(HEAD_PATTERN,
                                                                                      op.get_friendly_name()))
                                 for op in model.get_ordered_ops())
    meta = {"method": "openvino-nncf", **asdict(opt), "per_channel": True,
            "fp32_pattern": HEAD_PATTERN if opt.head_fp32 else "", "fp32_head_convs": n_head,
            "fake_quantize_nodes": n_fq, **(info or {})}
    write_props(quantized, {**props, "precision": "int8", "quantization": json.dumps(meta)})
    save_ir(quantized, out_xml)
    log(f"int8 (OpenVINO NNCF): {n_fq} FakeQuantize nodes, {n_head} head convs kept fp32 → {out_xml}")
    return out_xml


def save_ir(model, out_xml: Path) -> None:
    """Write ``out_xml`` + ``.bin`` atomically enough: both under temporary names, then renamed."""
    ov = require("openvino", "openvino")
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_xml.with_name(f".{out_xml.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        os.replace(tmp, out_xml)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)


def convert_openvino(fp32_onnx: str | Path, out_xml: str | Path, extra_props: dict[str, str] | None = None) -> Path:
    """The fp32 ONNX as an OpenVINO IR (same weights, metadata kept, plus ``extra_props``)."""
    ov = require("openvino", "openvino")
    from flowdet.runtime.predict.openvino_runtime import read_props, write_props

    model = ov.Core().read_model(str(fp32_onnx))
    write_props(model, {**read_props(model), **(extra_props or {})})
    save_ir(model, Path(out_xml))
    return Path(out_xml)
