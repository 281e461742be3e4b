"""The one YAML reader: config files, ``--set`` values, data.yaml, sources.yaml and configs/*.

``yaml.safe_load`` builds no objects, but it still expands aliases: a 332-byte file of nested
``&a [*b, *b, …]`` anchors ("billion laughs") becomes gigabytes, and a self-referencing anchor
becomes a recursive list. flowdet's YAML files never need anchors, so any anchor (``&name``) or
alias (``*name``) is refused while parsing, before anything is expanded; files are also capped in
size (:data:`MAX_YAML_BYTES`) and must be regular files (a FIFO would block the read forever).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowdet.errors import FlowdetError

MAX_YAML_BYTES = 1 << 20  # 1 MiB: a config, data.yaml or sources file is a few KB


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that stops at the first anchor or alias event (nothing is composed from it)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def loads(text: str) -> Any:
    """Parse YAML text (safe types only, no anchors or aliases); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 — a SafeLoader subclass


def describe(e: yaml.YAMLError) -> str:
    """'line N: problem' of a YAML error, on one line."""
    mark = getattr(e, "problem_mark", None)
    line = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{line}{problem}"


def read(path: str | Path, error: type[FlowdetError], what: str = "YAML file",
         max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The parsed content of the YAML file ``path``; any problem is one ``error`` line naming it.
    Opened through :func:`flowdet.files.open_regular` (a FIFO or device is refused, never read)."""
    from flowdet import files
    from flowdet.errors import DataError

    p = Path(path)
    try:
        with files.open_regular(p) as f:
            raw = f.read(max_bytes + 1)
    except DataError as e:
        raise error(e.message, path=p) from None
    except OSError as e:
        raise error(f"cannot read ({e.strerror or e})", path=p) from None
    if len(raw) > max_bytes:
        raise error(f"{what} is more than {max_bytes} bytes", path=p)
    try:
        return loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise error(f"not UTF-8 text (byte {e.start})", path=p) from None
    except RecursionError:
        raise error("YAML nested too deeply", path=p) from None
    except yaml.YAMLError as e:
        raise error(f"invalid YAML ({describe(e)})", path=p) from None
    except ValueError:  # yaml's int() of a number past Python's 4300-digit limit
        raise error("a number too long to be a value", path=p) from None
