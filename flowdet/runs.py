"""Run folders as ultralytics users expect them: a new run never lands in an old run's folder.

``runs/train`` is taken → ``runs/train2``, then ``runs/train3`` … (ultralytics' ``increment_path``),
unless the caller says ``exist_ok`` (``--exist-ok``, or ``--resume``, which means "that folder").
Torch-free: predict on the edge box uses it too.
"""
from __future__ import annotations

from pathlib import Path


def is_used(path: str | Path) -> bool:
    """A folder that exists and holds anything (an empty folder made by hand is free to use; so is
    one holding only ``.*.tmp`` leftovers of a write killed before its first checkpoint landed —
    the run that takes it removes them)."""
    p = Path(path)
    if not p.exists():
        return False
    if not p.is_dir():
        return True
    return any(not (f.name.startswith(".") and f.name.endswith(".tmp")) for f in p.iterdir())


def increment_path(path: str | Path, exist_ok: bool = False) -> Path:
    """``path`` if free (or ``exist_ok``), else the first free ``path2``, ``path3``, … beside it.

    As ultralytics: the number is appended to the name given (``runs/x2`` taken → ``runs/x22``)."""
    p = Path(path)
    if exist_ok or not is_used(p):
        return p
    n = 2
    while is_used(p.with_name(f"{p.name}{n}")):
        n += 1
    return p.with_name(f"{p.name}{n}")
