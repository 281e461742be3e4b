"""Atomic checkpoints and RNG state round trips (the basis of exact resume)."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flowdet.engine.checkpoint import (  # noqa: E402
    load_checkpoint,
    remove_stale_temps,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from flowdet.errors import ModelFileError  # noqa: E402


def test_save_load_roundtrip_leaves_no_temp_files(tmp_path):
    obj = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3, "names": ["bottle"]}
    p = tmp_path / "sub" / "last.pt"
    save_checkpoint(obj, p)
    save_checkpoint({**obj, "epoch": 4}, p)  # overwrite in place
    back = load_checkpoint(p)
    assert back["epoch"] == 4 and torch.equal(back["w"], obj["w"]) and back["names"] == ["bottle"]
    assert sorted(f.name for f in p.parent.iterdir()) == ["last.pt"]


def test_load_errors_are_one_line_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_checkpoint(bad)


def test_rng_state_is_plain_data_that_weights_only_loads(tmp_path):
    """Every flowdet checkpoint holds an RNG state: it must pass torch's safe unpickler."""
    p = tmp_path / "rng.pt"
    save_checkpoint({"rng": rng_state()}, p)
    back = torch.load(p, weights_only=True)["rng"]
    assert isinstance(back["numpy"]["key"], list) and len(back["numpy"]["key"]) == 624
    a = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    set_rng_state(torch.load(p, weights_only=True)["rng"])
    b = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert a[:3] == b[:3] and torch.equal(a[3], b[3])


def test_legacy_numpy_rng_checkpoints_still_load(tmp_path):
    """Checkpoints written before the plain-type state (numpy arrays inside) load and resume."""
    p = tmp_path / "old.pt"
    legacy = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save({"rng": legacy, "epoch": 2}, p)
    back = load_checkpoint(p)
    a = np.random.rand()
    set_rng_state(back["rng"])
    assert np.random.rand() == a


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


def test_stale_temp_files_of_a_killed_write_are_removed(tmp_path):
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / ".best.pt.x.tmp").write_bytes(b"half")
    (tmp_path / "keep.tmp").write_bytes(b"not ours")
    removed = remove_stale_temps(tmp_path)
    assert sorted(f.name for f in removed) == [".best.pt.x.tmp", ".last.pt.abc123.tmp"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["keep.tmp"]
