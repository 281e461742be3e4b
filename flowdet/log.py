"""How library code talks to the user: messages on stderr, results on stdout, one switch for both.

Stages call ``info`` / ``warn`` / ``debug`` (and ``result`` for what a user asked to see, like the
metrics table) instead of ``print`` or ``click.echo``, so a notebook and the CLI show the same lines
and ``flowdet -q`` / ``-v`` (or ``set_level``) quiet or widen them in one place. Under torchrun only
rank 0 speaks: N copies of every line help nobody. Progress bars stay tqdm (they are not messages).
Torch-free and click-free: the edge runtime uses it too.

    >>> from flowdet import log
    >>> log.set_level(log.QUIET)   # only warnings (and errors, which are exceptions) remain
"""
from __future__ import annotations

import os
import sys
from typing import TextIO

QUIET, NORMAL, VERBOSE = 0, 1, 2
_level = NORMAL
# ANSI styles for ``heading``; used only when stderr is a terminal (logs and pipes stay plain text).
_STYLES = {"cyan": "\033[1;36m", "green": "\033[1;32m"}


def set_level(level: int) -> None:
    """QUIET (warnings only), NORMAL (the default) or VERBOSE (adds ``debug`` lines)."""
    global _level
    if level not in (QUIET, NORMAL, VERBOSE):
        raise ValueError(f"log level must be QUIET, NORMAL or VERBOSE (0, 1, 2), got {level!r}")
    _level = level


def get_level() -> int:
    return _level


def _rank0() -> bool:
    # torchrun sets RANK in every worker; reading the environment keeps this module torch-free.
    return os.environ.get("RANK", "0") == "0"


def _write(stream: TextIO, msg: str) -> None:
    try:
        stream.write(msg + "\n")
    except UnicodeEncodeError:  # an ASCII-only console: "→" and "≥" become "?" instead of a crash
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write((msg + "\n").encode(enc, "replace").decode(enc))
    stream.flush()


def _emit(msg: str, min_level: int, all_ranks: bool) -> None:
    if _level >= min_level and (all_ranks or _rank0()):
        _write(sys.stderr, msg)  # looked up per call: pytest's capsys and notebooks swap sys.stderr


def info(msg: str, *, all_ranks: bool = False) -> None:
    """A progress or status line (hidden by ``-q``)."""
    _emit(msg, NORMAL, all_ranks)


def warn(msg: str, *, all_ranks: bool = False) -> None:
    """``warning: msg`` — shown at every level, ``-q`` included."""
    _emit(f"warning: {msg}", QUIET, all_ranks)


def debug(msg: str, *, all_ranks: bool = False) -> None:
    """Detail for ``-v`` only."""
    _emit(msg, VERBOSE, all_ranks)


def heading(msg: str, style: str = "cyan") -> None:
    """A stage headline: ``info`` in bold colour on a terminal, plain text otherwise."""
    if _level >= NORMAL and _rank0():
        tty = getattr(sys.stderr, "isatty", lambda: False)() and "NO_COLOR" not in os.environ
        _write(sys.stderr, f"{_STYLES[style]}{msg}\033[0m" if tty and style in _STYLES else msg)


def result(msg: str) -> None:
    """Output the caller asked for (a metrics table, a summary) on stdout, at every level."""
    if _rank0():
        _write(sys.stdout, msg)
