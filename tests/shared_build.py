"""Build a session fixture's files once per test run, also under pytest-xdist (tests/ is on pytest's
pythonpath). A session fixture is per process: with two workers each would train or export the
same thing again. Here the first worker to ask builds it under a file lock in the run's shared
temp folder and the others wait for it, then read it."""
from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder ``name``, filled by ``build(folder)`` once per test run; returned once complete.

    Without xdist it lives in the session's temp folder like any session fixture's; under xdist in
    the folder the workers' temp folders share (one per run: pytest-N/). The files are read-only by
    convention, as a session fixture's always were: a test that writes copies them first. A build
    that raised leaves no marker, so the next caller builds again (and fails the same way)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / f"built-{name}", root / f"built-{name}.done"
    with open(root / f"built-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
