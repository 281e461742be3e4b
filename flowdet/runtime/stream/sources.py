"""Frame sources for ``flowdet stream``: video file, image folder, camera index, RTSP/HTTP URL.

A source is opened, read frame by frame, closed — and, when live, reopened after a loss (see
``flowdet.runtime.stream.stream``, which owns the reconnect policy). Torch-free.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from flowdet.core.media import IMAGE_EXTS
from flowdet.errors import DataError

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(Exception):
    """The source cannot be opened (now). Internal: the reader retries on it; ``run_stream`` turns a
    failed first open into a :class:`flowdet.errors.DataError`."""


@dataclass
class Frame:
    """One captured frame. ``time``: seconds into the video (file), UNIX time (live), None (folder);
    ``capture``: ``time.perf_counter()`` right after the read (start of end-to-end latency)."""

    index: int
    time: float | None
    capture: float
    image: np.ndarray
    name: str | None = None


class FrameSizeWatch:
    """The frames of one video or camera share a size; a frame of another size (a resolution change
    mid-stream) is counted, and said once. Its boxes are in its own pixels (the predictor letterboxes
    each frame), so they are right; what it warns about is everything that assumed one size (the
    annotated video, rescaled to the first size; tracks and count lines across the change).
    OpenCV's FFmpeg reader rescales such frames to the stream's first size itself, invisibly: then
    every frame and box is in that first size's pixels, consistently, and nothing here fires."""

    def __init__(self, description: str):
        self.description = description
        self.first: tuple[int, int] | None = None
        self.changed = 0

    def check(self, index: int, image: np.ndarray) -> None:
        size = (int(image.shape[1]), int(image.shape[0]))
        if self.first is None:
            self.first = size
        elif size != self.first:
            self.changed += 1
            if self.changed == 1:
                from flowdet import log

                log.warn(f"{self.description}: frame {index} is {size[0]}x{size[1]}, the stream started at "
                         f"{self.first[0]}x{self.first[1]}: boxes stay in each frame's own pixels; the annotated "
                         "video is rescaled to the first size, tracks across the change may break "
                         "(frames of another size are counted: size_changes)")


class FrameSource(Protocol):
    live: bool  # live: latest-frame policy and reconnect on loss; else every frame, end on failure
    description: str
    fps: float | None

    def open(self) -> None:  # raises SourceError
        ...

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        """(BGR image, timestamp, name) or None at the end (file) / on a loss (live)."""
        ...

    def close(self) -> None:
        ...


class VideoFileSource:
    live = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.description = str(self.path)
        self.fps: float | None = None
        self.cap: cv2.VideoCapture | None = None
        self.frames = 0

    def open(self) -> None:
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise SourceError(f"{self.path}: cannot open the video (unsupported codec or not a video)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.frames = 0
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.expected: int | None = n if n > 0 else None  # a hint only: the decoder decides where it ends

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        ok, img = self.cap.read() if self.cap is not None else (False, None)
        if not ok:
            return None
        t = self.frames / self.fps if self.fps else None
        self.frames += 1
        return img, t, None

    def skip(self) -> bool:
        """Pass one frame without decoding it to an image (``--vid-stride``); False at the end."""
        ok = self.cap.grab() if self.cap is not None else False
        if ok:
            self.frames += 1
        return bool(ok)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageFolderSource:
    live = False
    fps: float | None = None  # a folder has no clock; typed as FrameSource declares it (mypy: protocol)
    fixed_size = False  # a folder may mix sizes; a video or camera (fixed_size absent: True) may not

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.description = str(self.path)
        self.files: list[Path] = []
        self.pos = 0

    def open(self) -> None:
        from flowdet.core.imread import SkipLog

        self.skipped = SkipLog()  # unreadable files: warned about, counted, left out
        if self.path.is_dir():
            from flowdet.paths import keep_inside

            self.files = keep_inside(self.path, sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS))
        else:
            self.files = [self.path]
        if not self.files:
            raise SourceError(f"{self.path}: no images ({', '.join(IMAGE_EXTS)}) in the folder")
        self.pos = 0

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        while self.pos < len(self.files):
            p = self.files[self.pos]
            self.pos += 1
            from flowdet.core.imread import try_read_image

            img, why = try_read_image(p)  # never blocks on a FIFO, never raises on a corrupt file
            if img is not None:
                return img, None, p.name
            self.skipped.add(p, why)
        return None

    def skip(self) -> bool:
        """Pass one image without reading it (``--vid-stride``); False at the end."""
        if self.pos >= len(self.files):
            return False
        self.pos += 1
        return True

    def close(self) -> None:
        pass


class CaptureSource:
    """A camera index or a network stream (RTSP/HTTP/…) through OpenCV's FFmpeg backend."""

    live = True

    def __init__(self, spec: int | str, open_timeout_s: float = 10.0):
        self.spec = spec
        self.description = f"camera {spec}" if isinstance(spec, int) else str(spec)
        self.fps: float | None = None
        self.open_timeout_s = open_timeout_s
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if isinstance(self.spec, int):
            cap = cv2.VideoCapture(self.spec)
        else:
            ms = int(self.open_timeout_s * 1000)  # bounded open/read so a dead server cannot hang us
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = cv2.VideoCapture(str(self.spec), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.description}: cannot open")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver's queue short: we want the newest frame
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        self.cap = cap

    def read(self) -> tuple[np.ndarray, float | None, str | None] | None:
        ok, img = self.cap.read() if self.cap is not None else (False, None)
        return (img, time.time(), None) if ok else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def open_source(spec: str | int) -> FrameSource:
    """SOURCE string → a source object (not yet opened). Unknown input is a one-line user error."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CaptureSource(int(spec))
    s = str(spec)
    if s.lower().startswith(LIVE_SCHEMES):
        return CaptureSource(s)
    p = Path(s)
    if p.is_dir() or (p.is_file() and p.suffix.lower() in IMAGE_EXTS):
        return ImageFolderSource(p)
    if p.is_file():
        return VideoFileSource(p)
    raise DataError(f"{s}: source not found (expected a video file, image folder, camera index or rtsp/http URL)")
