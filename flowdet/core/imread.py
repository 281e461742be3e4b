"""The one safe image reader: every flowdet stage that opens an image file goes through here.

``cv2.imread`` alone trusts the file: a header claiming 65000×65000 raises ``cv2.error`` (or, below
OpenCV's own 1-gigapixel limit, allocates gigabytes), a FIFO named ``a.jpg`` blocks forever, and a
truncated JPEG decodes "successfully" with its lower part grey. :func:`read_image` checks, in order
and before decoding anything:

1. the path is a **regular file** (``os.stat``, which never blocks on a FIFO or a device);
2. the **header** (parsed by :mod:`flowdet.core.image_headers`) gives width × height — for every
   format this OpenCV decodes: JPEG, PNG, BMP, WebP, TIFF and BigTIFF, GIF, JPEG 2000 (JP2 and
   codestream), AVIF, PNM/PAM, PFM, Sun raster, Radiance HDR — after the **EXIF orientation** the file carries (JPEG APP1, PNG eXIf, WebP EXIF, TIFF tag
   274), which must be at most :func:`max_pixels` (default 64 MP; ``FLOWDET_MAX_PIXELS`` or the
   ``max_pixels`` argument change it). A file whose size the header does not give is never handed to
   the decoder (a 420 KB BigTIFF or a GIF named .jpg used to decode to 12000×12000, 1 GB, before any
   cap could see it);
3. a JPEG has its **end-of-image marker** after the first scan and a PNG its ``IEND`` chunk
   (else it is truncated: the decoder would return a partial image);

then decodes with ``cv2.imread`` (decoder exceptions caught; ``None`` → "does not decode").

EXIF orientation: one policy for every reader — it is **applied**, as a phone, a browser, an
annotation tool showing the photo, ``cv2.imread`` and ultralytics do, so the pixels flowdet trains on,
scores and draws are the ones a person saw and labelled (a json whose ``width``/``height`` are the
stored, unrotated ones is then reported as a size mismatch, never used half-rotated). The decoder is
told to ignore the tag and :func:`orient` applies the one this module parsed, so the header's size and
the decoded pixels cannot disagree whatever OpenCV version (or format) decides on its own.
Every failure is an :class:`ImageReadError` (a :class:`flowdet.errors.DataError`) whose
``reason`` is one short phrase, so callers can skip and count (:class:`SkipLog`).
:func:`image_size` runs steps 1–3 only (a few small reads per file): what the COCO loader uses to
check ``width``/``height`` without decoding. Torch-free (numpy + cv2).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flowdet.core.image_headers import Header, parse_header
from flowdet.errors import DataError, InputError

MAX_PIXELS_ENV = "FLOWDET_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000


class ImageReadError(DataError):
    """An image file that cannot be used; ``reason`` is a short phrase ("truncated JPEG", …)."""

    def __init__(self, reason: str, path: str | Path):
        self.reason = reason
        super().__init__(reason, path=path)


def max_pixels(value: int | None = None) -> int:
    """The pixel cap: ``value`` when given, else ``$FLOWDET_MAX_PIXELS``, else 64 MP."""
    if value is not None:
        return int(value)
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        v = int(float(raw))
    except (ValueError, OverflowError):
        raise InputError(f"expected a number of pixels like 64000000, got {raw!r}", field=MAX_PIXELS_ENV) from None
    if v < 1:
        raise InputError(f"must be >= 1, got {raw!r}", field=MAX_PIXELS_ENV)
    return v


def is_regular_file(path: str | Path) -> bool:
    """True for a regular file (or a link to one); never opens the path, so never blocks."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_header(path: str | Path) -> Header:
    """Format, decoded size (EXIF orientation applied) and completeness from the file's bytes. Raises
    :class:`ImageReadError` for a missing or non-regular file; unknown formats give ``size=None``."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ImageReadError("image file not found", p) from None
    except OSError as e:
        raise ImageReadError(f"cannot read ({e.strerror})", p) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else ("a folder" if stat.S_ISDIR(st.st_mode) else "a device or socket")
        raise ImageReadError(f"not a regular file ({kind}; not opened)", p)
    if st.st_size == 0:
        raise ImageReadError("empty file", p)
    try:
        with open(p, "rb") as f:
            h = parse_header(f, st.st_size)
    except OSError as e:
        raise ImageReadError(f"cannot read ({e.strerror or e})", p) from None
    if h.size is not None and h.orientation in (5, 6, 7, 8):  # a quarter turn: width and height swap
        h.size = (h.size[1], h.size[0])
    return h



def _check_size(p: Path, size: tuple[int, int] | None, cap: int) -> None:
    if size is not None and size[0] * size[1] > cap:
        raise ImageReadError(f"image is {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP), over the "
                             f"{cap / 1e6:g} MP limit (raise it with {MAX_PIXELS_ENV})", p)


def _checked_header(p: Path, limit: int | None) -> Header:
    h = read_header(p)
    if h.format == "unknown":  # nothing to check the size against: never handed to a decoder
        raise ImageReadError("does not decode (not an image format flowdet knows; not opened by the decoder)", p)
    if h.size is None:
        raise ImageReadError(f"corrupt {h.format.upper()} header (no image size; not decoded)", p)
    _check_size(p, h.size, max_pixels(limit))
    if not h.complete:
        raise ImageReadError(f"truncated {h.format.upper()} (no end marker; it would decode only partly)", p)
    return h


def image_size(path: str | Path, limit: int | None = None) -> tuple[int, int] | None:
    """(width, height) as :func:`read_image` decodes it (EXIF orientation applied), from the header
    only. Raises :class:`ImageReadError` exactly where :func:`read_image` would refuse without decoding
    (not a file, no size in its header or no known header at all, over the cap, truncated)."""
    return _checked_header(Path(path), limit).size


def orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as stored → as shown, for EXIF orientation 1–8 (2, 4: mirrored; 3: half turn; 5, 7:
    mirrored across a diagonal; 6: a quarter turn clockwise, 8: counter-clockwise)."""
    import cv2

    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(img), -1)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def read_image(path: str | Path, limit: int | None = None, flags: int | None = None) -> np.ndarray:
    """HxWx3 uint8 BGR pixels of an image file, or :class:`ImageReadError` (never ``cv2.error``,
    never a partial decode of a truncated JPEG/PNG, never a blocking read)."""
    import cv2

    p = Path(path)
    header = _checked_header(p, limit)
    try:  # the orientation is this module's to apply (see the module docstring), not the decoder's
        img = cv2.imread(str(p), (cv2.IMREAD_COLOR if flags is None else flags) | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as e:
        msg = " ".join(str(e).split())[-120:]
        raise ImageReadError(f"does not decode ({msg})", p) from None
    if img is None:
        raise ImageReadError("does not decode (corrupt or unsupported format)", p)
    if header.format != "tiff":  # OpenCV's libtiff reader orients TIFF pixels itself, whatever the flag
        img = orient(img, header.orientation)
    cap = max_pixels(limit)
    if img.shape[0] * img.shape[1] > cap:  # a format whose header is not parsed above
        _check_size(p, (img.shape[1], img.shape[0]), cap)
    return img


def try_read_image(path: str | Path, limit: int | None = None) -> tuple[np.ndarray | None, str | None]:
    """(image, None) or (None, reason)."""
    try:
        return read_image(path, limit), None
    except ImageReadError as e:
        return None, e.reason


def probe(path: Path, is_video: bool, decode: bool) -> tuple[str | None, tuple[int, int] | None, int]:
    """(error or None, (width, height) when known, frame count for videos (-1 unknown)).

    Images: ``decode=False`` reads the header only (:func:`flowdet.core.imread.image_size`: regular
    file, size, pixel cap, truncation), ``decode=True`` decodes as well. Videos: ``decode=False``
    checks that a regular file exists."""
    if is_video:
        if not path.exists():
            return "video file not found", None, -1
        if not is_regular_file(path):
            return "video is not a regular file (not opened)", None, -1
        if not decode:
            return None, None, -1
        import cv2

        # header only: size and frame count (decoding every frame would be far too slow)
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return "video does not open", None, -1
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        return None, size, n
    try:
        if decode:
            img = read_image(path)
            return None, (img.shape[1], img.shape[0]), -1
        header = image_size(path)
        if header is None:  # a format whose header imread does not parse: decode to know
            img = read_image(path)
            return None, (img.shape[1], img.shape[0]), -1
        return None, header, -1
    except ImageReadError as e:
        return e.reason, None, -1


@dataclass
class SkipLog:
    """Files skipped by a long job, with why: one warning line per file as it happens (up to
    ``show``), and a one-line total (:meth:`summary`) at the end."""

    what: str = "image"
    show: int = 10
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str | Path, reason: str, echo: bool = True) -> None:
        self.skipped.append((str(path), reason))
        if echo and len(self.skipped) <= self.show:
            from flowdet import log

            log.warn(f"{path}: {reason} (skipped)")

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        n = len(self.skipped)
        return f"skipped {n} unreadable {self.what}{'s' if n != 1 else ''}" + (
            f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if n else "")
