"""The validator's report: every problem found (file, field, message) and what was skipped,
dropped or clipped. Filled by :mod:`flowdet.data.coco`; printed by ``flowdet data check``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdet.errors import DataError, one_line


@dataclass
class Problem:
    """One validation finding: the file it is in, the field (json path-like) and what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return one_line(f"{self.file}: {self.field}: {self.message}")


@dataclass
class ValidationReport:
    """Every problem found plus the counts of what was skipped, dropped and clipped."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    images_total: int = 0
    images_skipped: int = 0
    boxes_total: int = 0
    boxes_kept: int = 0
    boxes_dropped: int = 0
    boxes_clipped: int = 0
    boxes_in_skipped_images: int = 0
    images_written: int | None = None  # a converter that writes images (coco2yolo): how many; None otherwise

    def add(self, file: str | Path, field_name: str, message: str) -> None:
        self.problems.append(Problem(str(file), field_name, message))

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (f"{self.source}: {self.images_total - self.images_skipped}/{self.images_total} images, "
                f"{self.boxes_kept}/{self.boxes_total} boxes kept; {len(self.problems)} problem(s): "
                f"{self.images_skipped} image(s) skipped, {self.boxes_dropped} box(es) dropped, "
                f"{self.boxes_clipped} clipped, {self.boxes_in_skipped_images} in skipped images")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "problems"}
        d["problems"] = [str(p) for p in self.problems]
        return d

    def raise_if(self, strict: bool) -> None:
        """With ``strict``, any problem becomes a one-line DataError (exit code 2 through the CLI)."""
        if strict and self.problems:
            raise DataError(
                f"{len(self.problems)} problem(s) (strict), first: {self.problems[0]}; "
                "run `flowdet data check` to list all")


MAX_CLASS_NAME = 100  # characters: a class name is a word or two, not a payload


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name (None when it can): a string or an integer, not empty,
    at most :data:`MAX_CLASS_NAME` characters, nothing unprintable (a newline would break every
    table, data.yaml and label file it is written into)."""
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        return f"a class name must be text, got {type(name).__name__}"
    text = str(name)
    if not text.strip():
        return "empty class name"
    if len(text) > MAX_CLASS_NAME:
        return f"class name longer than {MAX_CLASS_NAME} characters"
    if not text.isprintable():
        return f"class name {text!r} has unprintable characters"
    return None
