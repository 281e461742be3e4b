"""Atomic checkpoints and RNG state round trips (the basis of exact resume)."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flowdet.engine.checkpoint import (load_checkpoint, rng_state, save_checkpoint,  # noqa: E402
                                       set_rng_state, unwrap)
from flowdet.errors import ModelFileError  # noqa: E402


def test_save_load_roundtrip_leaves_no_temp_files(tmp_path):
    obj = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3, "names": ["bottle"]}
    p = tmp_path / "sub" / "last.pt"
    save_checkpoint(obj, p)
    save_checkpoint({**obj, "epoch": 4}, p)  # overwrite in place
    back = load_checkpoint(p)
    assert back["epoch"] == 4 and torch.equal(back["w"], obj["w"]) and back["names"] == ["bottle"]
    assert sorted(f.name for f in p.parent.iterdir()) == ["last.pt"]


def test_load_errors_are_one_line_flowdet_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_checkpoint(bad)


def test_rng_state_restores_python_numpy_torch():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_unwrap_returns_the_bare_module():
    m = torch.nn.Linear(2, 2)

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = m

    assert unwrap(Wrapper()) is m and unwrap(m) is m
