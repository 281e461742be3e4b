"""Configs are data: YAML files → nested dataclasses, strictly validated.

One override mechanism everywhere: ``--config FILE`` then ``--set section.key=value`` (repeatable);
explicit CLI flags of a command are sugar that become the same ``section.key=value`` overrides.
Unknown keys are an error that names the key and the file it came from.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from flowdet import safe_yaml
from flowdet.errors import InputError

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(InputError, ValueError):
    """A config file or override is wrong; the message names the source and the key.

    A :class:`flowdet.errors.InputError` (the CLI shows one line, exit 2) and still a ValueError,
    which is what code catching bad values expects."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


class _OverrideText(str):
    """A ``--set`` value as typed, with its YAML reading in ``.parsed``. A str field takes the text
    itself: YAML reads ``0x544`` as the integer 1348 and ``1e3`` as 1000.0, which would turn
    ``--img-size 0x544`` into a confusing '1348' instead of an error about a zero side."""

    parsed: Any


def _override_value(raw: str, parsed: Any) -> Any:
    if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
        text = _OverrideText(raw)
        text.parsed = parsed
        return text
    return parsed


def _coerce(value: Any, typ: Any, where: str) -> Any:
    if isinstance(value, _OverrideText):
        value = str(value) if typ is str else value.parsed
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value  # merged field-by-field by the caller
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin in (list, tuple):
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = safe_yaml.loads(value)
            except (yaml.YAMLError, RecursionError, ValueError):
                raise ConfigError(f"{where}: not a YAML list: {value!r}") from None
        elif isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        out = [_coerce(v, item_type, where) for v in value]
        return tuple(out) if origin is tuple else out
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if typ is float:
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(f):  # nan/inf poison every later comparison
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return f
    if typ is str:
        return "" if value is None else str(value)
    return value


def merge(obj: T, data: dict, source: str, prefix: str = "") -> T:
    """Return a copy of dataclass ``obj`` with ``data`` merged in; unknown keys raise ConfigError."""
    types = _field_types(type(obj))
    changes = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"{source}: unknown key '{dotted}' (known here: {known})")
        typ = types[key]
        if dataclasses.is_dataclass(typ):
            _coerce(value, typ, f"{source}: '{dotted}'")
            changes[key] = merge(getattr(obj, key), value, source, dotted + ".")
        else:
            changes[key] = _coerce(value, typ, f"{source}: '{dotted}'")
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]  # obj: a config dataclass (T is unbound)


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = _override_value(raw.strip(), safe_yaml.loads(raw)) if raw != "" else ""
    except (yaml.YAMLError, RecursionError, ValueError):  # the text as typed (a glob "*.jpg" is an alias to YAML);
        # ValueError: an integer past Python's 4300-digit limit
        value = raw
    return key.strip().split("."), value


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Defaults of ``cls`` ← YAML ``path`` (a file, or a preset name under configs/) ← overrides."""
    cfg = cls()
    if path:
        p = Path(path)
        if not p.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
            p = CONFIG_DIR / f"{path}.yaml"
        if not p.exists():
            raise ConfigError(f"{path}: config file not found")
        data = safe_yaml.read(p, ConfigError, "config file") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        cfg = merge(cfg, data, str(p))
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """``cfg`` with each ``section.key=value`` merged in, in order (later ones win)."""
    for item in overrides:
        keys, value = parse_override(item)
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        cfg = merge(cfg, nested, f"--set {item}")
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path, notes: list[str] | None = None) -> None:
    """Write the resolved config next to a run's outputs (atomic); ``notes``: facts of the run (what
    ``--pseudo`` added) as ``#`` lines at the end, which a later ``--config`` read skips."""
    from flowdet.utils import atomic_write_text

    tail = "".join(f"# {' '.join(str(n).splitlines())}\n" for n in notes or [])
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False) + tail)
