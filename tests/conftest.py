"""Shared fixtures. Tests run on CPU with few threads so a 2-core CI box is not oversubscribed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # steadier than 2 on a shared 2-core box
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a reason when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A small synthetic FloW-like set (COCO json + images), made once per session."""
    from flowdet.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth_small")
    generate(out, SynthConfig(num_images=8, width=640, height=360, seed=0))
    return out
