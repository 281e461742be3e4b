"""flowdet's own errors: what library code raises instead of CLI exceptions.

Stages (``flowdet.detect``, ``flowdet.data``, ``flowdet.export``, ``flowdet.runtime``, …) raise these;
only ``flowdet/cli.py`` turns them into one ``Error: …`` line on stderr and exit code 2, so a notebook
user calling ``flowdet.detect.train(cfg)`` gets a normal Python exception with a readable message.

    >>> raise FlowdetError("no usable images", path="train.json", field="images")
    FlowdetError: train.json: images: no usable images
"""
from __future__ import annotations

from pathlib import Path

MAX_LINE = 500  # characters of one error or problem line: a hostile value is never echoed whole


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line of at most ``limit`` characters: newlines become spaces and a longer
    text keeps its head and its tail around a '…' (a path's start and a problem's "(skipped)" both
    survive). Every error line the CLI prints and every validation problem goes through it."""
    text = str(text)
    if len(text) <= limit:
        return " ".join(text.splitlines())
    tail = limit // 3  # cut before flattening: a 50 MB text is not copied whole
    return " ".join(text[: limit - tail - 1].splitlines()) + "…" + " ".join(text[-tail:].splitlines())


class FlowdetError(Exception):
    """A user-facing error: one line that names the file (and the field) it is about.

    Attributes:
        message: What is wrong and, where it helps, what to do.
        path: The file or folder concerned, if any (shown first).
        field: The key/flag/column concerned, if any (shown after the path).
        exit_code: What ``flowdet/cli.py`` exits with (class attribute; a subclass may differ).
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, field: str | None = None):
        self.message, self.path, self.field = str(message), (str(path) if path is not None else None), field
        super().__init__(self.format())

    def format(self) -> str:
        prefix = "".join(f"{p}: " for p in (self.path, self.field) if p)
        return prefix + self.message


class DataError(FlowdetError):
    """A dataset, annotation or image file is unreadable, malformed or inconsistent."""


class ModelFileError(FlowdetError):
    """A checkpoint, backbone or exported model is unreadable, untrusted or not a flowdet artifact."""


class InputError(FlowdetError):
    """A flag or config value is out of range (batch 0, conf 2, a malformed --img-size, …)."""


class MissingDependency(FlowdetError):
    """An optional extra is not installed; the message says which one."""
