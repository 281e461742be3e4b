"""The closing lines of every verb: what it wrote and the command to run next.

A newcomer should never have to guess where the results went or what comes after (ultralytics
ends each run with "Results saved to runs/detect/train2" and the next step). One format for
train / eval / predict / export, on stdout (what the user asked for, kept by ``-q``). Torch-free.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flowdet import log


def run_files(folder: str | Path) -> list[str]:
    """The visible files of a run folder, sorted (a sub-folder as ``name/``): what a fresh run wrote."""
    d = Path(folder)
    if not d.is_dir():
        return []
    return sorted(f.name + ("/" if f.is_dir() else "") for f in d.iterdir() if not f.name.startswith("."))


def wrote_line(folder: str | Path | None, names: Iterable[str]) -> str:
    """``wrote runs/x: best.pt, last.pt, …`` (``folder`` None: ``names`` are paths)."""
    listed = ", ".join(names)
    return f"wrote {folder}: {listed}" if folder is not None else f"wrote {listed}"


def say_done(folder: str | Path | None, names: Iterable[str], next_cmds: Iterable[str] = (),
             notes: Iterable[str] = ()) -> None:
    """The closing block: the files written, then each note, then ``next:`` commands."""
    log.result(wrote_line(folder, names))
    for note in notes:
        log.result(note)
    say_next(next_cmds)


def say_next(next_cmds: Iterable[str]) -> None:
    """The ``next:`` block: the first command after ``next: ``, the others aligned under it."""
    for i, cmd in enumerate(next_cmds):
        log.result(("next: " if i == 0 else "      ") + cmd)
