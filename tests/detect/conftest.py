"""Shared fixtures of the detector tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    # 1 thread: on a shared 2-core box, 2 threads per process are ~3x slower under contention.
    try:
        import torch
    except ImportError:  # the torch-free tests here run without it
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
