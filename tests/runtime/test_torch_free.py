"""flowdet/runtime/ is the edge box's package: it must import, every module of it, without torch.

Two checks: every module found on disk imports in a subprocess where ``import torch`` fails (what
the edge box sees), and a static scan finds no import of torch or of the torch-side packages in
any of them, function-local imports included (a lazy ``import torch`` passes the first check and
still breaks the box when that path runs). The one documented door: ``load_predictor`` imports
``flowdet.detect.torch_predictor`` when given a ``.pt`` checkpoint.
"""
from __future__ import annotations

import ast
import json

from no_torch import REPO, run_without_torch

RUNTIME = REPO / "flowdet" / "runtime"
# Packages that need torch (or are the torch side of the pipeline); the runtime never imports them.
TORCH_SIDE = ("torch", "torchvision", "flowdet.detect", "flowdet.engine", "flowdet.export", "flowdet.models",
              "flowdet.pretrain", "flowdet.metrics", "flowdet.commands", "flowdet.cli")
ALLOWED = {("flowdet.runtime.predict.predictor", "flowdet.detect.torch_predictor")}  # the .pt backend, on request


def _runtime_modules() -> list[str]:
    mods = []
    for f in sorted(RUNTIME.rglob("*.py")):
        parts = f.relative_to(REPO).with_suffix("").parts
        mods.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return mods


def test_every_runtime_module_imports_without_torch():
    mods = _runtime_modules()
    assert "flowdet.runtime.predict.onnx_runtime" in mods and "flowdet.runtime.stream.stream" in mods
    r = run_without_torch(f"""
        import importlib, json, sys
        try:
            import torch
            raise SystemExit("torch import was not blocked")
        except ModuleNotFoundError:
            pass
        for m in {mods!r}:
            importlib.import_module(m)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "click"))
        print(json.dumps(heavy))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []  # neither torch nor the CLI's click


def test_no_runtime_module_imports_the_torch_side():
    bad = []
    for mod in _runtime_modules():
        path = REPO.joinpath(*mod.split(".")).with_suffix(".py")
        if not path.is_file():
            path = REPO.joinpath(*mod.split("."), "__init__.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                if any(name == s or name.startswith(s + ".") for s in TORCH_SIDE) and (mod, name) not in ALLOWED:
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)
