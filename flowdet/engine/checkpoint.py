"""Atomic checkpoints (temp file + os.replace) holding everything an exact resume needs.

Loading is safe by construction: every checkpoint is read with ``torch.load(weights_only=True)``,
whose unpickler builds only tensors and plain containers/numbers/strings, so a ``.pt`` crafted to
run code on unpickling is refused with one line before anything in it runs. For that the RNG
states are stored as plain types (:func:`rng_state`): Python's as the tuple ``random.getstate()``
returns, numpy's MT19937 state as ``{"key": [624 ints], "pos", "has_gauss", "gauss"}``. Checkpoints
written before that (numpy arrays inside) still load: numpy's array/dtype/scalar constructors are
allowlisted, which builds data only (never calls into arbitrary code).
"""
from __future__ import annotations

import io
import os
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowdet.errors import ModelFileError
from flowdet.utils import atomic_write_bytes


def _numpy_state() -> dict[str, Any]:
    s = np.random.get_state(legacy=False)
    return {"bit_generator": s["bit_generator"], "key": [int(v) for v in s["state"]["key"]],
            "pos": int(s["state"]["pos"]), "has_gauss": int(s["has_gauss"]), "gauss": float(s["gauss"])}


def _set_numpy_state(state: Any) -> None:
    if isinstance(state, dict) and "key" in state:
        np.random.set_state((state.get("bit_generator", "MT19937"), np.asarray(state["key"], dtype=np.uint32),
                             int(state["pos"]), int(state["has_gauss"]), float(state["gauss"])))
    else:  # the legacy tuple of checkpoints written before plain-type states
        np.random.set_state(state)


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as types ``torch.load(weights_only=True)`` accepts."""
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    # a list after some round trips; random.setstate wants (version, tuple of ints, gauss)
    random.setstate((py[0], tuple(py[1]), py[2]))
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Serialize to memory then write atomically: a crash never leaves a half-written file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def remove_stale_temps(folder: str | Path, names: tuple[str, ...] = ("last.pt", "best.pt", "backbone.pt"),
                       min_age_s: float = 0.0) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files a killed :func:`save_checkpoint` left in ``folder`` (called at the
    start of a run, before anything of this run writes there); returns what was removed."""
    d = Path(folder)
    if not d.is_dir():
        return []
    removed = []
    now = time.time()
    for name in names:
        for f in d.glob(f".{name}.*.tmp"):
            try:
                if f.is_file() and now - f.stat().st_mtime >= min_age_s:
                    f.unlink()
                    removed.append(f)
            except OSError:
                pass  # not ours to remove (permissions): harmless, it is never read
    return removed


def _legacy_numpy_globals() -> list[Any]:
    """numpy's data-only constructors: what pre-plain-state checkpoints (numpy RNG arrays) need."""
    core = getattr(np, "_core", None) or np.core
    out: list[Any] = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


def _refused_global(e: Exception) -> str | None:
    """The Python global/type torch's safe unpickler refused ("builtins.open"), or None when the
    error is something else (a corrupt file, a bad opcode)."""
    text = str(e)
    m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"but got <class '([^']+)'>", text)
    return m.group(1) if m else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a flowdet checkpoint with ``weights_only=True``; a file that is missing, not a torch
    file, or holds anything beyond tensors and plain data is a one-line :class:`ModelFileError`."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError("checkpoint not found", path=p)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_legacy_numpy_globals()):
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            obj = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt / not a torch file / refused by the safe unpickler
        import pickle

        refused = _refused_global(e) if isinstance(e, pickle.UnpicklingError) else None
        if refused is not None:
            raise ModelFileError(
                f"refused to load: it holds '{refused}', which no flowdet checkpoint contains; unpickling it "
                "could run code, so it was not opened (use checkpoints you made or trust)", path=p) from None
        text = str(e)
        if "WeightsUnpickler error:" in text:  # not a pickle torch understands: keep torch's own reason only
            text = text.split("WeightsUnpickler error:", 1)[1]
            text = text.split("Check the documentation", 1)[0]
        first = " ".join(text.split())[:160]
        raise ModelFileError(f"not a readable flowdet checkpoint ({type(e).__name__}: {first})", path=p) from None
    if not isinstance(obj, dict):
        raise ModelFileError(f"not a flowdet checkpoint (holds a {type(obj).__name__}, not a dict)", path=p)
    return obj


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module under DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
