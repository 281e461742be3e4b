"""The one path rule: a name read from a file is used only when it lands inside the root the user gave.

Files flowdet reads name other files: a COCO json's ``file_name``s, a VOC ``<filename>``, a YOLO
data.yaml's ``path``/``train``/``val`` and its list files, a mined ``manifest.jsonl``, a ``--frames``
list. Those files are data — often downloaded with a dataset — so every such name goes through
:func:`within`: ``root / name`` is resolved (``..`` and symlinks followed, as the kernel would) and
used only when the result is inside the resolved root. An absolute name, a ``../`` name and a
symlink inside the root that points out are all refused the same way; the caller counts the
refusal as a skip (never read, never copied or linked).

The root is a folder the user named on the command line (``--images``, the VOC folder, ``--frames
DIR``) or, when none was named, the folder of the file the user named (the json, the data.yaml,
the list). A file may redirect to another root (a json's ``info.images_dir``, a data.yaml's
``path``): :func:`file_root` follows it only when it stays inside that folder, or when flowdet
itself wrote the file for a root the user named then (:func:`remember_root`, kept outside the
dataset in ``$XDG_STATE_HOME/flowdet/roots/`` — a dataset cannot vouch for itself).

Outputs: a name that becomes part of an output path (``coco2yolo --split``) is a plain name
(:func:`plain_name`), so every output stays under ``--out``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from flowdet.errors import InputError

OUTSIDE = "outside the {what} {root} (not read, copied or linked; skipped)"


def real(path: str | Path) -> str:
    """``path`` made absolute with every symlink and ``..`` resolved (what the kernel would open)."""
    return os.path.realpath(os.path.abspath(path))


def is_inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` resolves to ``root`` itself or below it (both resolved; 25-50 µs of CPU a
    name, no cache: a root replaced by a symlink mid-session is seen at once)."""
    base, target = real(root), real(path)
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


def within(root: str | Path, name: str | Path) -> Path | None:
    """``root / name`` when it resolves inside ``root`` (symlinks and ``..`` followed), else None.

    The path returned is the unresolved ``root / name`` (the dataset's own name for the file, used
    in outputs and messages); it opens the same file the check resolved. An absolute ``name``
    replaces ``root`` in the join and is therefore refused unless it points inside."""
    if isinstance(name, str) and ("\x00" in name or not name):
        return None
    path = Path(root) / name
    return path if is_inside(root, path) else None


def keep_inside(root: str | Path, files: list[Path], source: str | Path | None = None) -> list[Path]:
    """``files`` listed in or below the folder ``root`` that resolve inside it: a symlink pointing out
    (or a list line leading out) is left out unread, counted in one warning naming ``source``."""
    kept = [f for f in files if is_inside(root, f)]
    if len(kept) < len(files):
        from flowdet import log

        log.warn(f"{source or root}: {len(files) - len(kept)} file(s) lead out of {root} "
                 "(a link or a name pointing out; not read, skipped)")
    return kept


def plain_name(value: str, flag: str) -> str:
    """``value`` when it is a plain file name (no separator, not ``.``/``..``, printable): the
    name of an output folder such as ``coco2yolo --split``, which must not lead out of ``--out``."""
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if (not value or value in (".", "..") or any(s in value for s in seps)
            or any(not ch.isprintable() for ch in value)):
        raise InputError(f"must be a plain name (no '/', '\\', '..'), got {value!r}", field=flag)
    return value


# --------------------------------------------------------------------- roots flowdet recorded itself

def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "flowdet" / "roots"


def _entry(file: str | Path) -> Path:
    return _state_dir() / (hashlib.sha1(real(file).encode()).hexdigest()[:20] + ".json")


def remember_root(file: str | Path, root: str | Path) -> None:
    """Record that flowdet wrote ``file`` (just now) for the images root ``root`` the user named,
    so :func:`file_root` follows ``file``'s redirect there. Keyed by the file's real path, size and
    mtime: an edited or replaced file is no longer vouched for. Best effort: an unwritable state
    folder only means ``--images`` must be passed later."""
    from flowdet.utils import atomic_write_json

    try:
        st = os.stat(file)
        atomic_write_json(_entry(file), {"file": real(file), "root": real(root),
                                         "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    except OSError:
        pass


def remembered_root(file: str | Path) -> Path | None:
    """The root recorded by :func:`remember_root` for ``file`` as it is now, else None."""
    try:
        st = os.stat(file)
        with open(_entry(file), encoding="utf-8") as f:
            rec = json.load(f)
        if (rec.get("file"), rec.get("size"), rec.get("mtime_ns")) == (real(file), st.st_size, st.st_mtime_ns):
            return Path(rec["root"]) if isinstance(rec.get("root"), str) else None
    except (OSError, ValueError, AttributeError):
        pass
    return None


def file_root(file: str | Path, redirect: str | None = None,
              hint: str = "pass the folder yourself, e.g. --images, to use it") -> tuple[Path, str | None]:
    """(the root names in ``file`` may reach, why a redirect was not followed or None).

    ``file``'s own folder (resolved), or ``redirect`` (relative to that folder, or absolute) when
    it resolves inside that folder or is the root flowdet recorded when it wrote ``file``. Without
    a redirect: the recorded root, else the folder."""
    folder = Path(real(file)).parent
    if not redirect:  # a list flowdet wrote (efficiency's exclude_val.txt) may name files of its root
        return remembered_root(file) or folder, None
    target = folder / redirect
    if is_inside(folder, target):
        return target, None
    known = remembered_root(file)
    if known is not None and real(known) == real(target):
        return target, None
    return folder, (f"{redirect!r} is outside {folder} and {Path(file).name} was not written by flowdet "
                    f"for it: not followed ({hint})")
