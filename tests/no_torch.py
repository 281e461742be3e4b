"""Run Python in a subprocess where ``import torch`` fails, the way it does on a torch-less edge box."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A meta-path finder in front of every other: torch (and torchvision) raise ModuleNotFoundError.
BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith(("torch.", "torchvision")):
                raise ModuleNotFoundError(f"No module named '{name}' (blocked by the test)")
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def run_without_torch(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -c BLOCK_TORCH + code`` from the repository root; stdout/stderr captured as text."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout)
