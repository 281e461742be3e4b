"""Reading the small files a user names — configs, sources.yaml, frame and image lists, labels,
class lists, manifests, state files: the one place that opens them.

``open(path)`` on a FIFO blocks until a writer comes (forever, for a hostile one) and on a device
reads without end; a non-UTF-8 byte in a list is a ``UnicodeDecodeError`` traceback. Here the path
is opened with ``O_NONBLOCK`` (a FIFO opens at once), checked with ``fstat`` on that same descriptor
(no race with a swapped file) and refused unless it is a regular file; text must be UTF-8 (a BOM is
dropped). Every failure is one :class:`flowdet.errors.DataError` line naming the file. Torch-free.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from flowdet.errors import DataError


def kind_of(mode: int) -> str:
    """"a FIFO", "a folder", "a device or socket" — what a non-regular file is, for a message."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a device or socket"


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, or a :class:`DataError` when it is missing, unreadable or
    not a regular file (never blocks: a FIFO or device is refused before anything is read)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError("file not found", path=p) from None
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror or e})", path=p) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"not a regular file ({kind_of(mode)}; not read)", path=p)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path) -> bytes:
    """The whole regular file ``path`` (see :func:`open_regular`)."""
    with open_regular(path) as f:
        try:
            return f.read()
        except OSError as e:
            raise DataError(f"cannot read ({e.strerror or e})", path=path) from None


def decode_text(data: bytes, path: str | Path) -> str:
    """UTF-8 ``data`` (a leading BOM dropped) or one line naming the first bad byte and its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8 text (byte {e.start}, line {line}); save it as UTF-8", path=path) from None


def read_text(path: str | Path) -> str:
    """The UTF-8 text of the regular file ``path``, one :class:`DataError` line otherwise."""
    return decode_text(read_bytes(path), path)
