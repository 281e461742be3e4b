"""Atomic checkpoints (temp file + os.replace) holding everything an exact resume needs."""
from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowdet.utils import atomic_write_bytes


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Serialize to memory then write atomically: a crash never leaves a half-written file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    from flowdet.errors import ModelFileError

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: checkpoint not found")
    try:
        return torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:  # corrupt / not a torch file
        raise ModelFileError(f"{p}: not a readable flowdet checkpoint ({type(e).__name__}: {e})") from None


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module under DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
