"""Checkpoint → ``model.onnx`` with decoded outputs, metadata inside, parity-checked.

Graph contract: input ``images`` [B, 3, H, W] float32 BGR 0–255 (top-left letterbox, pad 114);
outputs ``boxes`` [B, N, 4] xyxy in input pixels and ``scores`` [B, N, C] = obj·cls. NMS and the
rescale to original pixels stay outside the graph, in flowdet.core.postprocess, so every backend
shares one postprocessing path (class id = argmax over ``scores``).
"""
from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flowdet import log as _log
from flowdet.core.defaults import PAD_VALUE
from flowdet.core.size import InputSize
from flowdet.errors import FlowdetError, InputError, ModelFileError
from flowdet.export.parity import ParityReport, check_parity
from flowdet.export.parity_data import DEFAULT_PARITY_IMAGES, checkpoint_frames, frames_from
from flowdet.models.head import decode_boxes, flatten_levels, make_grids
from flowdet.runtime.predict.metadata import ModelMeta
from flowdet.utils import require


class DecodedYOLOX(nn.Module):
    """YOLOX forward + decoding for one fixed input size, anchor grids baked in as constants.

    Same math as ``YOLOX.decode`` (parity tests compare against ``YOLOX.predict``), but with the
    grid precomputed so the graph has static N and no shape arithmetic (simpler for TensorRT)."""

    def __init__(self, model: nn.Module, img_size: tuple[int, int], half: bool = False):
        super().__init__()
        self.model, self.half_ = model, half
        h, w = img_size
        dummies = [torch.zeros(1, 1, h // s, w // s) for s in model.strides]
        grids, strides = make_grids(dummies, model.strides)
        self.register_buffer("grids", grids, persistent=False)
        self.register_buffer("strides", strides, persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        levels = self.model(images.half() if self.half_ else images)
        flat = flatten_levels(levels).float()  # decode in fp32 even for fp16 weights: exp is touchy
        cxcywh = decode_boxes(flat[..., :4], self.grids, self.strides)
        half_wh = cxcywh[..., 2:] / 2
        boxes = torch.cat([cxcywh[..., :2] - half_wh, cxcywh[..., :2] + half_wh], -1)
        scores = flat[..., 4:5].sigmoid() * flat[..., 5:].sigmoid()
        return boxes, scores


@dataclass
class ExportResult:
    path: Path
    meta: ModelMeta
    parity: ParityReport | None
    seconds: float


def _img_size(value: int | tuple[int, int] | list[int] | None, ckpt_size: list[int]) -> tuple[int, int]:
    """The export input size: ``value`` as given, else the size the checkpoint was trained at."""
    return InputSize.parse(ckpt_size if value is None else value)


def _static_output_dims(proto, n: int, num_classes: int, dynamic_batch: bool) -> None:
    """With ``dynamic_axes`` the TorchScript exporter names every output dim symbolically; only the
    batch is dynamic here, so state N and 4 / C (shape inference downstream, TensorRT profiles)."""
    for out, last in zip(proto.graph.output, (4, num_classes)):
        dims = out.type.tensor_type.shape.dim
        for d, value in zip(dims, (None if dynamic_batch else 1, n, last)):
            if value is None:
                d.dim_param = "batch"
            else:
                d.dim_value = value


def _max_opset() -> int:
    """Highest opset the TorchScript exporter of this torch supports (checked up front: on an
    unsupported opset torch dumps the whole graph to stderr before raising)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    except (ImportError, AttributeError):  # private module: fall back to a safe, widely supported value
        return 17


def _simplify(path: Path, log: Callable[[str], None]) -> None:
    try:
        import onnxsim  # optional; not a dependency of any extra
    except ImportError:
        log("--simplify: onnxsim is not installed, skipped (the exported graph is already constant-folded)")
        return
    import onnx

    model, ok = onnxsim.simplify(onnx.load(str(path)))
    if ok:
        onnx.save(model, str(path))
        log("--simplify: onnxsim simplified the graph")
    else:
        log("--simplify: onnxsim could not validate the simplified graph, kept the original")


def export_onnx(ckpt: str | Path, out: str | Path, img_size: int | tuple[int, int] | None = None,
                dynamic_batch: bool = False, opset: int = 17, simplify: bool = False, half: bool = False,
                parity: bool = True, parity_data: str | Path | None = None, parity_images: int = DEFAULT_PARITY_IMAGES,
                use_ema: bool = True, log: Callable[[str], None] = _log.info) -> ExportResult:
    """Export a detector checkpoint to ONNX; raise :class:`flowdet.errors.FlowdetError` if parity fails.

    ``parity_data``: a dataset (COCO json, data.yaml), image folder or image for the parity check;
    None: the checkpoint's own val (else train) images when they are on this machine, else
    synthetic frames (flowdet.export.parity_data). The model is written to ``out`` only after the
    parity check has passed."""
    onnx = require("onnx")
    from flowdet import __version__
    from flowdet.detect.io import model_from_checkpoint
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    t0 = time.perf_counter()
    max_opset = _max_opset()
    if not 11 <= opset <= max_opset:
        raise InputError(f"--opset {opset}: this torch exports opsets 11–{max_opset}")
    out = Path(out)
    from flowdet.core import validate

    validate.writable_file(out)  # before the export work: a wrong --out costs nothing
    if out.exists():
        log(f"note: {out} exists and will be replaced (only once the new model passes its checks)")
    model, ckpt_meta = model_from_checkpoint(ckpt, use_ema=use_ema)
    size = _img_size(img_size, ckpt_meta["img_size"])
    model = model.float().eval().fuse()
    meta = ModelMeta(names=list(ckpt_meta["names"]), cat_ids=[int(c) for c in ckpt_meta["cat_ids"]], img_size=size,
                     strides=[int(s) for s in model.strides], model_size=model.size, dynamic_batch=dynamic_batch,
                     precision="fp16" if half else "fp32", flowdet_version=__version__,
                     **stored_threshold(ckpt_meta))
    if len(meta.names) != model.num_classes:
        raise ModelFileError(f"{ckpt}: 'names' has {len(meta.names)} entries but the model has {model.num_classes} classes")

    frames = None
    if parity:  # before the export work: a wrong --parity-data costs nothing
        frames = (frames_from(parity_data, parity_images, log) if parity_data is not None
                  else checkpoint_frames(ckpt, ckpt_meta.get("config"), parity_images, log))
    graph_model = DecodedYOLOX(copy.deepcopy(model).half() if half else model, size, half).eval()
    dummy = torch.full((1, 3, *size), float(PAD_VALUE))
    axes = {n: {0: "batch"} for n in ("images", "boxes", "scores")} if dynamic_batch else None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.onnx")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter: the dynamo one needs onnxscript, which no extra installs.
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(graph_model, (dummy,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["images"], output_names=["boxes", "scores"], dynamic_axes=axes,
                                  do_constant_folding=True)
            except Exception as e:  # e.g. an opset this torch cannot target
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise FlowdetError(f"{ckpt}: torch.onnx.export failed at --opset {opset} ({first})") from None
        if simplify:
            _simplify(tmp, log)
        proto = onnx.load(str(tmp))
        _static_output_dims(proto, graph_model.grids.shape[0], model.num_classes, dynamic_batch)
        del proto.metadata_props[:]
        for k, v in meta.to_props().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.producer_name, proto.producer_version = "flowdet", __version__
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        report = None
        if frames is not None:
            predictor = OnnxPredictor(tmp, providers="cpu", spinning=False)
            report = check_parity(model, predictor, frames, meta.precision)
            log(report.line())
            if not report.ok:
                raise FlowdetError(f"{out}: parity check failed, model not written ({report.line()})")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(out, meta, report, time.perf_counter() - t0)


def stored_threshold(ckpt_meta: dict[str, Any]) -> dict[str, Any]:
    """``best_conf`` / ``best_conf_from`` for the metadata: the best-F1 threshold of the evaluation
    stored with these weights (training's validation), when it found anything (best F1 > 0)."""
    from flowdet.detect.io import stored_best_conf

    found = stored_best_conf(ckpt_meta)
    return {} if found is None else {"best_conf": found[0], "best_conf_from": found[1]}


def export(ckpt: str | Path, out: str | Path, fmt: str = "onnx", workspace_gb: float = 2.0, max_batch: int = 8,
           log: Callable[[str], None] = _log.info, **onnx_kwargs) -> ExportResult:
    """``flowdet export``: ``fmt`` "onnx" → ``out``; "engine" → ``out`` (TensorRT) built from an ONNX
    written next to it (``out`` with suffix .onnx), metadata in ``<out>.json``."""
    if fmt == "onnx":
        return export_onnx(ckpt, out, log=log, **onnx_kwargs)
    if fmt != "engine":
        raise InputError(f"--format {fmt}: choose onnx or engine")
    from flowdet.export.tensorrt import build_engine, check_engine_support
    from flowdet.runtime.predict.metadata import write_sidecar

    check_engine_support()  # exits 2 with one line before any work when TensorRT/GPU are missing
    out = Path(out)
    half = bool(onnx_kwargs.pop("half", False))  # TensorRT does fp16 itself from the fp32 graph
    res = export_onnx(ckpt, out.with_suffix(".onnx"), log=log, **onnx_kwargs)
    t0 = time.perf_counter()
    build_engine(res.path, out, half=half, workspace_gb=workspace_gb, max_batch=max_batch, log=log)
    res.meta.precision = "fp16" if half else "fp32"
    write_sidecar(out, res.meta)
    return ExportResult(out, res.meta, res.parity, res.seconds + time.perf_counter() - t0)
