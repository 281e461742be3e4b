"""flowdet/core/ imports, every module of it, where ``import torch`` fails (the edge box)."""
from __future__ import annotations

from no_torch import REPO, run_without_torch


def test_every_core_module_imports_without_torch():
    mods = sorted("flowdet.core." + f.stem for f in (REPO / "flowdet" / "core").glob("*.py") if f.stem != "__init__")
    assert "flowdet.core.detections" in mods
    r = run_without_torch(f"""
        import importlib, sys
        for m in {mods!r}:
            importlib.import_module(m)
        assert "torch" not in sys.modules
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
