"""Every config key with its default and its help, for `flowdet cfg` and the commands' ``--help``.

The help of a key is the ``# comment`` on its line in the dataclass source (the one place where
it is written), so the printout cannot drift from the code. Torch-free.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from typing import Any

import yaml

WRAP = 100  # a help longer than this goes above its key in `flowdet cfg`, wrapped at this width
_FIELD = re.compile(r"^\s*(\w+)\s*:[^=]*=.*?#\s*(.*)$")


def _comments(cls: type) -> dict[str, str]:
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []  # a comment block over a field is its help when the line has none
    for line in src.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        m = _FIELD.match(line)
        name = m.group(1) if m else (re.match(r"^\s*(\w+)\s*:", line) or [None, None])[1]
        if m:
            out[m.group(1)] = m.group(2).strip()
        elif name and above:
            out[name] = " ".join(above)  # whole: `flowdet cfg` wraps a long one (as_yaml), never cuts it
        above = []
    return out


def fields(cfg: Any, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, value, help) for every leaf of a config dataclass instance, in source order."""
    rows: list[tuple[str, Any, str]] = []
    helps = _comments(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            rows += fields(value, key + ".")
        else:
            rows.append((key, value, helps.get(f.name, "")))
    return rows


def default_of(cfg: Any, key: str) -> Any:
    """The value at a dotted key (``train.epochs``)."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def as_yaml(cfg: Any) -> str:
    """The config as a commented YAML (sections as mappings): save it, edit it, pass it as --config."""
    lines: list[str] = []
    section = None
    for key, value, help_ in fields(cfg):
        head, _, leaf = key.rpartition(".")
        if head != section:
            if head:
                lines.append(f"{head}:")
            section = head
        text = yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True,
                              width=1000).strip().removesuffix("...").strip()
        indent = "  " * (head.count(".") + 1) if head else ""
        if len(help_) > WRAP:  # a long help above its key, wrapped, as in the dataclass source
            lines += [f"{indent}# {part}" for part in textwrap.wrap(help_, WRAP)]
            help_ = ""
        lines.append(f"{indent}{leaf}: {text}" + (f"  # {help_}" if help_ else ""))
    return "\n".join(lines) + "\n"
