"""``flowdet mine``'s bookkeeping files, read as untrusted input: ``manifest.jsonl`` (one kept frame a
line), ``sources.json`` (which sources are finished, with what sampling, at what file state) and the
lock that keeps two runs out of one folder. Torch-free.

- One run per folder: :class:`Manifest` takes ``manifest.jsonl.lock`` with ``fcntl.flock``; a second
  ``flowdet mine`` on the same ``--out`` is one line, not a manifest with every line twice.
- Loading repairs what a crash or an older run left: a torn last line is cut, a (source, frame)
  listed twice is kept once (the file is rewritten atomically, with a warning). Any other line that
  is not a record, and a state file that is not one, is one :class:`DataError` naming file and line.
- A source is "done" only at the state it had when mined (:func:`source_stamp`: sizes and mtimes of
  what it reads), so a folder that grew, or a video replaced, is mined again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

from flowdet import files, log
from flowdet.errors import DataError, InputError


def _is_frame(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_records(path: Path) -> tuple[list[tuple[str, dict]], bool]:
    """([(line, record)], torn) of a manifest or part file: ``torn`` when the last line has no newline
    (a crash mid-append; it is left out). Any other line that is not a record is a DataError."""
    lines = files.read_text(path).split("\n")
    last = lines.pop()  # "" when the file ends with a newline
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # invalid JSON, or a number past Python's 4300-digit limit
            rec = None
        if not (isinstance(rec, dict) and isinstance(rec.get("source"), str) and _is_frame(rec.get("frame"))
                and isinstance(rec.get("path"), str) and rec["path"]):
            raise DataError(f"line {n}: not a manifest record (a json object with 'source', 'frame' >= 0 and "
                            "'path'); delete that line (its frame is mined again) or use a new --out", path=path)
        out.append((line, rec))
    return out, bool(last.strip())


class Manifest:
    """Append-only ``manifest.jsonl`` with an index of (source, frame) already present.

    ``lock``: hold ``<manifest>.lock`` (``fcntl.flock``, released by :meth:`close` or the process's end)
    for the whole run; :class:`InputError` when another run holds it."""

    def __init__(self, path: Path, lock: bool = False):
        self.path = path
        self.seen: dict[str, set[int]] = {}
        self.count = 0
        self._lock: IO[bytes] | None = _take_lock(path) if lock else None
        try:
            if path.exists() or path.is_symlink():
                self._load()
            self._f = open(path, "a", encoding="utf-8")
        except BaseException:
            self._release()
            raise

    def _load(self) -> None:
        records, torn = parse_records(self.path)
        kept = []
        for line, rec in records:
            if not self.has(rec["source"], rec["frame"]):
                self.seen.setdefault(rec["source"], set()).add(rec["frame"])
                kept.append(line)
        self.count = len(kept)
        if torn or len(kept) < len(records):  # rewritten whole: appends then start on a line boundary
            from flowdet.utils import atomic_write_text

            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
            if len(kept) < len(records):
                log.warn(f"{self.path}: removed {len(records) - len(kept)} duplicate line(s) (a frame listed twice, "
                         "e.g. by two runs at once before this folder was locked)")

    def has(self, source: str, frame: int) -> bool:
        return frame in self.seen.get(source, ())

    def append(self, rec: dict) -> None:
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.seen.setdefault(rec["source"], set()).add(int(rec["frame"]))
        self.count += 1

    def close(self) -> None:
        self._f.close()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None


def _take_lock(manifest: Path) -> IO[bytes] | None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (flowdet's edge targets are Linux)
        return None
    lock_path = manifest.with_name(manifest.name + ".lock")
    f = open(lock_path, "a+b")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InputError("another `flowdet mine` is writing into this folder (its manifest is locked); wait for it "
                         "to finish or use another --out", path=manifest.parent) from None
    return f


def load_state(path: Path) -> dict[str, dict]:
    """``sources.json``: {source key: {"done", "params", "stamp", …}}; {} when absent."""
    if not (path.exists() or path.is_symlink()):
        return {}
    try:
        state = json.loads(files.read_text(path))
    except ValueError:
        state = None
    if not (isinstance(state, dict) and all(isinstance(v, dict) and isinstance(v.get("params", {}), dict)
                                            for v in state.values())):
        raise DataError("not a `flowdet mine` state file (a json object, one entry per source); delete it to "
                        "check every source again (frames already in manifest.jsonl are kept)", path=path)
    return state


def source_stamp(paths: list[Path]) -> str:
    """What a source reads, as names, sizes and mtimes (no decoding): a different stamp means the
    source changed since it was mined (a folder that grew, a video replaced)."""
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p.name}|missing\n".encode())
    return h.hexdigest()[:16]
