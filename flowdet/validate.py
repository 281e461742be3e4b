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

from flowdet.errors import InputError

MAX_IMG_SIZE = 8192  # a network input side above this is a typo, not a model (and gigabytes of RAM)


def _number(value: Any, flag: str, integer: bool) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or value is None:
        raise InputError(f"expected {kind}, got {value!r}", field=flag)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected {kind}, got {value!r}", field=flag) from None
    if not math.isfinite(v):
        raise InputError(f"expected a finite number, got {value!r}", field=flag)
    if integer and v != int(v):
        raise InputError(f"expected an integer, got {value!r}", field=flag)
    return v


def number_in(value: Any, flag: str, lo: float | None = None, hi: float | None = None, *,
              integer: bool = False, lo_open: bool = False) -> Any:
    """``value`` as int/float, finite, within [lo, hi] (``lo_open``: (lo, hi])."""
    v = _number(value, flag, integer)
    bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi)
    if bad:
        what = "an integer" if integer else "a number"
        if lo is not None and hi is not None:
            rng = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        elif lo is not None:
            rng = f"> {lo:g}" if lo_open else f">= {lo:g}"
        else:
            rng = f"<= {hi:g}"
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


def threads(value: Any, flag: str = "--threads") -> int | None:
    """CPU threads: None (the library default) or an integer >= 1."""
    return None if value is None else number_in(value, flag, 1, 1024, integer=True)


def epochs(value: Any, flag: str = "--epochs") -> int:
    return number_in(value, flag, 1, 1_000_000, integer=True)


def lr(value: Any, flag: str = "--lr", allow_zero: bool = False) -> float:
    """Learning rate: finite, > 0 (>= 0 with ``allow_zero``, where 0 means "derive it")."""
    return number_in(value, flag, 0.0, 10.0, lo_open=not allow_zero)


def img_size(value: Any, flag: str = "--img-size", lo: int = 32) -> int:
    """Square network input side: a multiple of 32 (the largest stride) in [lo, 8192]."""
    v = number_in(value, flag, lo, MAX_IMG_SIZE, integer=True)
    if v % 32:
        raise InputError(f"must be a multiple of 32 (the largest stride), got {value!r}", field=flag)
    return v


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
