"""The efficiency grid's files and processes: ``results.json``, the path lists its runs read, the
subprocess runner, the seconds a run's ``metrics.csv`` records (flowdet.experiments.efficiency)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flowdet.errors import DataError, FlowdetError

Runner = Callable[[list[str], Path], None]  # (flowdet argv, log file) → None; raises FlowdetError on failure


def write_path_list(path: Path, paths: list[Path], root: str | Path) -> None:
    """``paths`` (absolute, one a line) into ``path``, vouched for as flowdet's list of files under
    ``root`` (flowdet.paths.remember_root). Left as it is when its text would not change: two lanes
    sharing one --out rewrite the same lists while the other's runs read them, and a rewrite moves
    the mtime the vouching is keyed on."""
    from flowdet.paths import real, remember_root, remembered_root
    from flowdet.utils import atomic_write_text

    text = "".join(f"{p}\n" for p in paths)
    try:
        same = path.read_text() == text
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    if not same or remembered_root(path) != Path(real(root)):
        remember_root(path, root)


def subprocess_runner(argv: list[str], log_path: Path) -> None:
    """``python -m flowdet ARGV`` with output to ``log_path``; a failure names the log and its error line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "flowdet", *argv]
    with log_path.open("w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if r.returncode != 0:
        lines = log_path.read_text(errors="replace").splitlines()
        err = next((ln for ln in reversed(lines) if ln.startswith("Error")), lines[-1] if lines else "")
        raise FlowdetError(f"`flowdet {argv[0]}` failed (exit {r.returncode}): {err.strip()[:300]} — see {log_path}")


def load_results(path: Path) -> dict:
    """``results.json`` of a grid ({} when absent): {"pretrain": {method: {...}}, "points": {name: {...}}}.
    A file that is not one (corrupt, or another json) is one line, never a traceback mid-resume."""
    if not (path.exists() or path.is_symlink()):
        return {}
    from flowdet.files import read_text

    try:
        res = json.loads(read_text(path))
    except ValueError:
        res = None
    ok = isinstance(res, dict) and all(isinstance(res.get(k, {}), dict) and all(isinstance(v, dict) for v in
                                                                                 res.get(k, {}).values())
                                       for k in ("pretrain", "points"))
    if ok:
        ok = all(isinstance(v.get("backbone"), str) for v in res.get("pretrain", {}).values())
    if not ok:
        raise DataError("not a `flowdet efficiency` results file ({\"pretrain\": {…}, \"points\": {…}}); move it "
                        "away to run the grid again (finished runs resume from their folders)", path=path)
    return res


def csv_seconds(path: Path) -> float | None:
    import csv

    if not path.is_file():
        return None
    with path.open() as f:
        rows = list(csv.DictReader(f))
    col = "seconds" if rows and "seconds" in rows[0] else "time_s"  # pretraining / detector csv
    vals = [float(r[col]) for r in rows if r.get(col) not in (None, "")]
    return round(sum(vals), 1) if vals else None


def image_count(path: Path) -> int:
    from flowdet.data.coco import image_entries, read_json

    return len(image_entries(read_json(path), path))
