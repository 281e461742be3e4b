"""Run an OpenVINO test in a fresh interpreter.

OpenVINO loads its own threading runtime (TBB) next to torch's OpenMP; in one long pytest process
that made later, unrelated torch tests segfault at random. The child holds OpenVINO alone."""
from __future__ import annotations

import os
import subprocess
import sys


def ran_in_child(test_file: str, name: str) -> bool:
    """Run ``test_file::name`` in a child pytest and report whether the parent should stop here
    (True in the parent once the child passed; False inside the child, which runs the body)."""
    if os.environ.get("FLOWDET_OPENVINO_CHILD"):
        return False
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{test_file}::{name}"],
                       env={**os.environ, "FLOWDET_OPENVINO_CHILD": "1"}, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return True
