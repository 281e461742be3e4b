"""Run folders as ultralytics users expect them: a new run never lands in an old run's folder.

``runs/train`` is taken → ``runs/train2``, then ``runs/train3`` … (ultralytics' ``increment_path``),
unless the caller says ``exist_ok`` (``--exist-ok``, or ``--resume``, which means "that folder").
With ``claim`` the folder is taken atomically (two runs started at once never share one): see
:func:`claim_run_dir`. Torch-free: predict on the edge box uses it too.
"""
from __future__ import annotations

import os
from pathlib import Path

CLAIM = ".flowdet-run"  # created with O_EXCL in a run folder: the one atomic "this folder is mine"


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


def increment_path(path: str | Path, exist_ok: bool = False, claim: bool = False) -> Path:
    """``path`` if free (or ``exist_ok``), else the first free ``path2``, ``path3``, … beside it.

    As ultralytics: the number is appended to the name given (``runs/x2`` taken → ``runs/x22``).
    ``claim``: create the folder and take it atomically (:func:`claim_run_dir`); a name another
    process claimed between the check and the claim moves on to the next number."""
    p = Path(path)
    if exist_ok:
        return p
    n = 1
    while True:
        cand = p if n == 1 else p.with_name(f"{p.name}{n}")
        if not is_used(cand) and (not claim or claim_run_dir(cand)):
            return cand
        n += 1


def claim_run_dir(path: str | Path) -> bool:
    """Create ``path`` (and parents) and its :data:`CLAIM` file with ``O_CREAT | O_EXCL``: True for
    the one process that created the file, False for every other (the folder is someone's run).
    Checking "is it free?" and then writing is a race two runs started at once both win."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(p / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True
