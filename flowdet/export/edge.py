"""``flowdet export --int8`` / ``--backend openvino [--precision bf16]``: a faster CPU model from
the fp32 ONNX, kept only when the gate (:mod:`flowdet.export.gate`) says it is worth it.

Files: the candidate goes to ``out`` (``.onnx`` for onnxruntime INT8, an IR ``.xml`` + ``.bin``
for OpenVINO); the fp32 ONNX it is measured against stays beside it as ``<stem>.fp32.onnx`` (or is
the ``.onnx`` given as ``--ckpt``); the gate's result goes into the candidate's metadata and into
``<out>.gate.json`` (written on a refusal too, so the numbers are never lost). A refused candidate
is not written.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flowdet import log as _log
from flowdet.errors import InputError
from flowdet.export.gate import GateRefused, GateResult, gate_props, run_gate


@dataclass
class EdgeResult:
    path: Path
    fp32_onnx: Path
    gate: GateResult | None
    gate_json: Path | None


def fp32_sibling(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.fp32.onnx")


@contextlib.contextmanager
def quiet_quantizers() -> Iterator[None]:
    """onnxruntime's quantizer logs advice to the root logger (and NNCF every node to its own); one
    summary line per step (ours) is what a user reads. Levels are restored afterwards."""
    root, nncf_log = logging.getLogger(), logging.getLogger("nncf")
    before = root.level, nncf_log.level
    root.setLevel(max(root.level, logging.ERROR))
    nncf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(before[0])
        nncf_log.setLevel(before[1])


def _write_candidate_props(path: Path, props: dict[str, str]) -> None:
    from flowdet.utils import require

    if path.suffix == ".xml":
        ov = require("openvino", "openvino")
        from flowdet.export.quantize import save_ir
        from flowdet.runtime.predict.openvino_runtime import read_props, write_props

        model = ov.Core().read_model(str(path))
        write_props(model, {**read_props(model), **props})
        save_ir(model, path)
        return
    onnx = require("onnx")
    from flowdet.export.quantize import _set_props

    proto = onnx.load(str(path))
    _set_props(proto, props)
    onnx.save(proto, str(path))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.suffix == ".xml":
        path.with_suffix(".bin").unlink(missing_ok=True)


def _replace(tmp: Path, out: Path) -> None:
    if tmp.suffix == ".xml":
        os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(tmp, out)


def check_edge_args(out: str | Path, int8: bool, backend: str, precision: str, calib: str | None,
                    val: str | None, force: bool) -> None:
    """Refuse a flag combination before any work (one line each)."""
    out = Path(out)
    if backend not in ("onnxruntime", "openvino"):
        raise InputError(f"--backend {backend}: choose onnxruntime or openvino", field="--backend")
    if precision == "bf16" and backend != "openvino":
        raise InputError("--precision bf16 is an OpenVINO inference precision; add --backend openvino",
                         field="--precision")
    if int8 and not calib:
        raise InputError("--int8 needs --calib DIR|VIDEO|train.json: real frames to calibrate on", field="--calib")
    if calib and not int8:
        raise InputError("--calib is for --int8", field="--calib")
    if backend == "openvino" and out.suffix != ".xml":
        raise InputError(f"{out}: --backend openvino writes an OpenVINO IR; name --out model.xml", field="--out")
    if backend == "onnxruntime" and out.suffix != ".onnx":
        raise InputError(f"{out}: --int8 on onnxruntime writes an .onnx; name --out model.onnx", field="--out")
    gated = int8 or precision == "bf16"
    if gated and val is None and not force:
        raise InputError("the gate scores the candidate on a val set: give --val ann.json (--images DIR), "
                         "or --force to skip the AP check", field="--val")


def export_edge(fp32_onnx: str | Path, out: str | Path, int8: bool = True, backend: str = "onnxruntime",
                precision: str = "fp32", calib: str | Path | None = None, calib_frames: int = 64,
                val: str | Path | None = None, images: str | Path | None = None, max_ap_drop: float = 1.0,
                min_speedup: float = 1.3, force: bool = False, threads: int | None = 1, runs: int = 30,
                log: Callable[[str], None] = _log.info) -> EdgeResult:
    """Build the candidate from ``fp32_onnx``, gate it against it, write it to ``out`` if it passes
    (or with ``force``); raise :class:`GateRefused` (one line with both numbers) otherwise."""
    from flowdet.export.calib import calibration_batches, load_calibration_frames
    from flowdet.export.quantize import convert_openvino, quantize_onnxruntime, quantize_openvino
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    check_edge_args(out, int8, backend, precision, str(calib) if calib else None,
                    str(val) if val else None, force)
    fp32_onnx, out = Path(fp32_onnx), Path(out)
    if out.resolve() == fp32_onnx.resolve():
        raise InputError(f"{out}: --out would overwrite the fp32 model it is measured against", field="--out")
    # spinning off: in interleaved runs a spinning worker would take the other model's core
    fp32 = OnnxPredictor(fp32_onnx, providers="cpu", threads=threads, spinning=False)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    label = f"{backend} {'int8' if int8 else precision}" + (" (bf16 hint)" if int8 and precision == "bf16" else "")
    hint = {"runtime_precision": precision} if backend == "openvino" else {}
    try:
        if int8:
            frames = load_calibration_frames(calib, calib_frames)
            info = {"calib_source": str(calib), "calib_frames": len(frames)}
            log(f"int8: calibrating on {len(frames)} frame(s) of {calib}")
            batches = calibration_batches(frames, fp32.img_size)
            with quiet_quantizers():
                (quantize_onnxruntime if backend == "onnxruntime" else quantize_openvino)(fp32_onnx, tmp, batches,
                                                                                         info, log=log)
        else:
            convert_openvino(fp32_onnx, tmp)
        if not int8 and precision == "fp32":  # a plain IR conversion: nothing faster claimed, no gate
            _write_candidate_props(tmp, hint)
            _replace(tmp, out)
            log(f"wrote {out} (OpenVINO IR, fp32 weights)")
            return EdgeResult(out, fp32_onnx, None, None)
        if backend == "openvino":
            from flowdet.runtime.predict.openvino_runtime import OpenVinoPredictor

            cand = OpenVinoPredictor(tmp, precision=precision, threads=threads)
        else:
            cand = OnnxPredictor(tmp, providers="cpu", threads=threads, spinning=False)
        res = run_gate(fp32, cand, label, val, images, max_ap_drop, min_speedup, threads, runs, log=log)
        res.forced = force and not res.passed
        gate_json = Path(str(out) + ".gate.json")
        from flowdet.utils import atomic_write_json

        atomic_write_json(gate_json, res.to_json(), indent=2)
        if not res.passed and not force:
            raise GateRefused(f"refused {label}: {'; '.join(res.reasons)} — {res.line()}; "
                              f"model not written (--force keeps it; numbers in {gate_json})")
        if res.forced:
            log(f"warning: --force: keeping {label} although the gate refused it ({'; '.join(res.reasons)})")
        del cand
        _write_candidate_props(tmp, {**gate_props(res), **hint})
        _replace(tmp, out)
        log(f"wrote {out} ({label}); gate result in its metadata and {gate_json}")
        return EdgeResult(out, fp32_onnx, res, gate_json)
    finally:
        _remove(tmp)


def read_gate(path: str | Path) -> dict | None:
    """The gate result stored in a model written by :func:`export_edge` (None if it has none)."""
    path = Path(path)
    if path.suffix == ".xml":
        from flowdet.runtime.predict.openvino_runtime import import_openvino, read_props

        props = read_props(import_openvino().Core().read_model(str(path)))
    else:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        props = dict(sess.get_modelmeta().custom_metadata_map)
    return json.loads(props["gate"]) if "gate" in props else None
