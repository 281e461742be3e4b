"""One set of validators for the values every verb shares (torch-free: the edge runtime uses them).

Each returns the value (converted) or raises :class:`flowdet.errors.InputError` naming the flag, so
``predict --conf 2`` and ``eval --batch 0`` fail the same way with the same one line as
``--set train.batch=0``:

    >>> conf(2.0)
    InputError: --conf: must be a number in [0, 1], got 2.0

Out paths: :func:`writable_dir` / :func:`writable_file` create the folder and prove it takes a
file *before* a long job starts, so a read-only or wrong ``--out`` is one line, not a traceback
after an hour of training.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from flowdet.core.size import MAX_SIDE, InputSize
from flowdet.errors import InputError


def _number(value: Any, flag: str, integer: bool) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or value is None:
        raise InputError(f"expected {kind}, got {value!r}", field=flag)
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float's range
        raise InputError(f"expected {kind}, got {value!r}", field=flag) from None
    if not math.isfinite(v):
        raise InputError(f"expected a finite number, got {value!r}", field=flag)
    if integer and v != int(v):
        raise InputError(f"expected an integer, got {value!r}", field=flag)
    return v


def number_in(value: Any, flag: str, lo: float | None = None, hi: float | None = None, *,
              integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> Any:
    """``value`` as int/float, finite, within [lo, hi] (``lo_open`` / ``hi_open``: that end excluded)."""
    v = _number(value, flag, integer)
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        what = "an integer" if integer else "a number"

        def shown(x: float) -> str:
            return str(int(x)) if integer else f"{x:g}"
        if lo is not None and hi is not None:
            rng = f"in {'(' if lo_open else '['}{shown(lo)}, {shown(hi)}{')' if hi_open else ']'}"
        elif lo is not None:
            rng = f"> {shown(lo)}" if lo_open else f">= {shown(lo)}"
        else:
            rng = f"< {shown(hi)}" if hi_open else f"<= {shown(hi)}"  # type: ignore[arg-type]
        raise InputError(f"must be {what} {rng}, got {value!r}", field=flag)
    return int(v) if integer else v


def conf(value: Any, flag: str = "--conf") -> float:
    """Score threshold in [0, 1]."""
    return number_in(value, flag, 0.0, 1.0)


def iou(value: Any, flag: str = "--iou") -> float:
    """NMS IoU threshold in [0, 1]."""
    return number_in(value, flag, 0.0, 1.0)


def batch(value: Any, flag: str = "--batch", hi: int = 4096) -> int:
    """Images per step: an integer >= 1."""
    return number_in(value, flag, 1, hi, integer=True)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, which containers narrow; else os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads(value: Any, flag: str = "--threads") -> int | None:
    """CPU threads: None (the library default) or an integer in [1, CPUs of this process]. More
    threads than CPUs only slows inference (``predict --threads 1000`` spun 1000 threads on 2 cores:
    a hang), so the limit is the machine's own."""
    if value is None:
        return None
    n = cpu_count()
    v = number_in(value, flag, 1, None, integer=True)
    if v > n:
        raise InputError(f"must be at most {n} (the CPUs this process may use), got {value!r}", field=flag)
    return v


MAX_SEED = 2**32 - 1  # numpy's seeds are unsigned 32-bit


def seed(value: Any, flag: str = "--seed") -> int:
    """A random seed: an integer in [0, 2**32 - 1] (numpy refuses others with a traceback)."""
    return number_in(value, flag, 0, MAX_SEED, integer=True)


MAX_FPS = 1000.0  # frames per second: more is no video (``flowdet mine`` treats it as unknown)


def fps(value: Any, flag: str = "--fps") -> float:
    """A frame rate in (0, 1000]. ``inf`` or ``1e300`` made a sampler stepping by 1/fps stand still."""
    return number_in(value, flag, 0.0, MAX_FPS, lo_open=True)


MAX_EPOCHS = 1_000_000


def epochs(value: Any, flag: str = "--epochs") -> int:
    return number_in(value, flag, 1, MAX_EPOCHS, integer=True)


def lr(value: Any, flag: str = "--lr", allow_zero: bool = False) -> float:
    """Learning rate: finite, > 0 (>= 0 with ``allow_zero``, where 0 means "derive it")."""
    return number_in(value, flag, 0.0, 10.0, lo_open=not allow_zero)


def predict_args(conf_: Any = None, iou_: Any = None, batch_: Any = None, threads_: Any = None) -> None:
    """Check the shared inference flags given (None = not given) in one call."""
    if conf_ is not None:
        conf(conf_)
    if iou_ is not None:
        iou(iou_)
    if batch_ is not None:
        batch(batch_)
    threads(threads_)


# ------------------------------------------------------------------------------------ out paths

def writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create folder ``path`` (and parents) and prove a file can be created in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError("exists and is not a folder", path=p, field=flag)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the folder ({e.strerror or e})", path=p, field=flag) from None
    try:
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".flowdet-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InputError(f"folder is not writable ({e.strerror or e})", path=p, field=flag) from None
    return p


def writable_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` can be written: not a folder, and its folder exists (created) and is writable."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a folder; expected a file name", path=p, field=flag)
    if p.exists() and not p.is_file():
        raise InputError("exists and is not a regular file", path=p, field=flag)
    writable_dir(p.parent if str(p.parent) else Path("."), flag)
    return p


# ------------------------------------------------------------------------------- model metadata

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def model_meta(fields: dict[str, Any], source: str) -> None:
    """Check the parsed metadata of an exported model (``names``, ``cat_ids``, ``img_size``,
    ``strides``, ``letterbox``, …; values already json-decoded): wrong types or values are a
    :class:`flowdet.errors.ModelFileError` naming the field, never a ``TypeError`` later."""
    from flowdet.errors import ModelFileError

    def bad(key: str, want: str) -> ModelFileError:
        return ModelFileError(f"metadata field '{key}' must be {want}, got {fields.get(key)!r}"[:240], path=source)

    names = fields.get("names")
    if not (isinstance(names, list) and 1 <= len(names) <= 10000 and all(isinstance(n, str) for n in names)):
        raise bad("names", "a non-empty list of class names (strings)")
    cat_ids = fields.get("cat_ids")
    if cat_ids is not None and not (isinstance(cat_ids, list) and len(cat_ids) == len(names)
                                    and all(_is_int(c) for c in cat_ids) and len(set(cat_ids)) == len(cat_ids)):
        raise bad("cat_ids", f"a list of {len(names)} distinct integers (one per name)")
    size = fields.get("img_size")
    try:  # json integers only (no "640", no 640.0), then the one input-size rule
        if not (isinstance(size, list) and all(_is_int(v) for v in size)):
            raise InputError("not a list of integers")
        InputSize.parse(size, "img_size")
    except InputError:
        raise bad("img_size", f"[H, W], multiples of 32 in [32, {MAX_SIDE}]") from None
    strides = fields.get("strides")
    if strides is not None and not (isinstance(strides, list) and strides and all(_is_int(v) and v > 0 for v in strides)):
        raise bad("strides", "a non-empty list of positive integers")
    lb = fields.get("letterbox")
    if lb is not None and not isinstance(lb, dict):
        raise bad("letterbox", "a json object")
    for key, choices in (("dynamic_batch", ("true", "false")), ("precision", ("fp32", "fp16", "int8"))):
        if key in fields and fields[key] not in choices:
            raise bad(key, " or ".join(repr(c) for c in choices))


def onnx_io(inputs: list[Any], outputs: list[Any], meta: Any, source: str) -> None:
    """Check an ONNX Runtime session's inputs/outputs against the flowdet graph contract and the
    metadata: one float input [B, 3, H, W] with (H, W) = ``img_size`` when static; outputs
    ``boxes`` [B, N, 4] and ``scores`` [B, N, C] with C = number of names."""
    from flowdet.errors import ModelFileError

    def fail(msg: str) -> ModelFileError:
        return ModelFileError(msg, path=source)

    if len(inputs) != 1:
        raise fail(f"expected one input ('images' [B, 3, H, W]), the graph has {len(inputs)}")
    inp = inputs[0]
    if inp.type not in ("tensor(float)", "tensor(float16)"):
        raise fail(f"input '{inp.name}' is {inp.type}; the flowdet contract is float32 (or float16) 0-255 BGR")
    shape = list(inp.shape or [])
    if len(shape) != 4:
        raise fail(f"input '{inp.name}' has shape {shape}; expected rank 4 [B, 3, H, W]")
    if _is_int(shape[1]) and shape[1] != 3:
        raise fail(f"input '{inp.name}' has {shape[1]} channels; expected 3 (BGR)")
    hw = shape[2:]
    if all(_is_int(v) for v in hw) and tuple(hw) != tuple(meta.img_size):
        raise fail(f"metadata img_size {list(meta.img_size)} differs from the graph input {hw}")
    by_name = {o.name: o for o in outputs}
    for name, last, what in (("boxes", 4, "4 (xyxy)"), ("scores", len(meta.names), f"{len(meta.names)} (one per name)")):
        o = by_name.get(name)
        if o is None:
            continue  # the caller names missing outputs
        oshape = list(o.shape or [])
        if len(oshape) != 3:
            raise fail(f"output '{name}' has shape {oshape}; expected rank 3 [B, N, {last}]")
        if _is_int(oshape[2]) and oshape[2] != last:
            raise fail(f"output '{name}' has {oshape[2]} values per anchor; expected {what}")
        if o.type not in ("tensor(float)", "tensor(float16)"):
            raise fail(f"output '{name}' is {o.type}; expected float")
    b, s = by_name.get("boxes"), by_name.get("scores")
    if b is not None and s is not None and _is_int((b.shape or [0, 0])[1]) and _is_int((s.shape or [0, 0])[1]) \
            and b.shape[1] != s.shape[1]:
        raise fail(f"outputs 'boxes' and 'scores' have {b.shape[1]} and {s.shape[1]} anchors")
