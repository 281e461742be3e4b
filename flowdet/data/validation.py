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


# Keys that make an annotation a don't-care region, and the only strings read as their values.
IGNORE_KEYS = ("iscrowd", "ignore", "difficult")
_FLAG_STRINGS = {"0": False, "false": False, "1": True, "true": True}


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
    # key → [count, first place] of flags given as strings ("0", "true"): one problem per key at the end
    _flag_strings: dict[str, list] = field(default_factory=dict, repr=False)

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

    def ignore_flag(self, ann: dict, src: str, where: str) -> bool:
        """Whether an annotation is a don't-care region (any of :meth:`dont_care_flags`)."""
        return any(self.dont_care_flags(ann, src, where).values())

    def dont_care_flags(self, ann: dict, src: str, where: str) -> dict[str, bool]:
        """Each of ``iscrowd``/``ignore``/``difficult`` present in an annotation, read
        strictly: a bool, or the number 0 or 1. The strings "0"/"1"/"true"/"false" mean what they say
        (their intent is plain; refusing them would lose every box) but pycocotools reads any non-empty
        string as crowd, so they are counted into one problem per key (:meth:`close`). Anything else is
        a problem naming the field, and the box is kept as an ignore region: neither taught nor scored."""
        flags: dict[str, bool] = {}
        for key in IGNORE_KEYS:
            if key not in ann:
                continue
            v = ann[key]
            if isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1)):
                flags[key] = bool(v)
            elif isinstance(v, str) and v.strip().lower() in _FLAG_STRINGS:
                flags[key] = _FLAG_STRINGS[v.strip().lower()]
                seen = self._flag_strings.setdefault(key, [0, f"{where}.{key} = {v!r}"])
                seen[0] += 1
            else:
                self.add(src, f"{where}.{key}", f"{str(v)[:40]!r} is not 0/1/true/false (kept as an ignore region)")
                flags[key] = True
        return flags

    def close(self, src: str) -> None:
        """Turn the counted string flags into one problem per key."""
        for key, (n, first) in self._flag_strings.items():
            self.add(src, f"annotations[*].{key}", f"a string in {n} annotation(s) (first: {first}); read "
                     "'0'/'false' as 0 and '1'/'true' as 1, but pycocotools reads any non-empty string as "
                     "crowd: write the numbers 0/1")
        self._flag_strings.clear()

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "problems" and not k.startswith("_")}
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
