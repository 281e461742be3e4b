"""What ``flowdet pseudo-label`` labels, one :class:`FrameSeq` per source, read with flowdet's own readers.

- a video file → its frames in order (:class:`flowdet.runtime.stream.sources.VideoFileSource`): **ordered**;
- a folder with ``manifest.jsonl`` (``flowdet mine``), or the manifest itself → one sequence per mined
  video, frames by frame number (:func:`flowdet.mine.miner.read_manifest`): **ordered**, with the
  frame gaps the mining left (the tracker takes them as ``dt``);
- a folder → its videos (each a sequence) and its images (:class:`flowdet.runtime.stream.sources.ImageFolderSource`,
  name order): **unordered** unless ``sequence`` (a labeled set's stills are not a video: tracking them
  would confirm nothing real);
- a COCO ``.json`` → its images as listed, labels not read (e.g. val's images as a new camera's frames):
  unordered.

Every source is opened and its first frame read by :func:`check_sources` before anything is run or
written: a video that does not decode or a folder without images is one :class:`DataError`.
Torch-free (numpy + cv2).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flowdet.core.imread import SkipLog, try_read_image
from flowdet.core.media import IMAGE_EXTS
from flowdet.errors import DataError
from flowdet.mine.miner import MANIFEST, read_manifest
from flowdet.mine.miner import expand_sources as expand_mine_sources
from flowdet.runtime.stream.source_reader import SourceSpec, name_sources
from flowdet.runtime.stream.sources import ImageFolderSource, SourceError, VideoFileSource

Key = tuple[str, "int | None"]   # (resolved file or mined source, frame number or None): an image's identity


@dataclass
class SeqFrame:
    """One frame to label. ``index``: its frame number in the source (a video's frame, a mined frame's,
    else its position); ``file``: the image file it was read from (None: a decoded video frame);
    ``name``: its file name under ``DIR/images/<slug>/``; ``keys``: what labels may call it."""

    index: int
    image: np.ndarray
    name: str
    file: Path | None
    keys: tuple[Key, ...]


@dataclass
class FrameSeq:
    kind: str                   # "video" | "images" | "manifest" | "coco"
    path: Path                  # the file or folder named on the command line
    label: str                  # what the user knows it as (the path; a mined video's source path)
    ordered: bool               # frames in time order: the track filter runs
    slug: str = ""              # its folder under DIR/images/, unique in the run
    files: list[Path] = field(default_factory=list)         # images / coco: the files, in order
    records: list[dict] = field(default_factory=list)       # manifest: its lines, by frame number
    skipped: SkipLog = field(default_factory=lambda: SkipLog("frame"))

    def frames(self, stride: int = 1, max_frames: int | None = None) -> Iterator[SeqFrame]:
        """Every ``stride``-th frame, at most ``max_frames``; unreadable image files are skipped and counted."""
        gen = self._video(stride) if self.kind == "video" else self._listed(stride)
        for n, fr in enumerate(gen):
            if max_frames is not None and n >= max_frames:
                return
            yield fr

    def _video(self, stride: int) -> Iterator[SeqFrame]:
        src = VideoFileSource(self.path)
        try:
            src.open()
        except SourceError as e:
            raise DataError(str(e)) from None
        key = str(self.path.resolve())
        try:
            k = 0
            while (got := src.read()) is not None:
                if k % stride == 0:
                    yield SeqFrame(k, got[0], f"{k:06d}.jpg", None, ((key, k),))
                k += 1
        finally:
            src.close()

    def _listed(self, stride: int) -> Iterator[SeqFrame]:
        if self.kind == "manifest":
            items = [(int(r["frame"]), Path(r["path"]), ((str(Path(r["path"]).resolve()), None),
                                                         (str(r["source"]), int(r["frame"]))))
                     for r in self.records]
        else:
            items = [(i, f, ((str(f.resolve()), None),)) for i, f in enumerate(self.files)]
        names: set[str] = set()
        for index, f, keys in items[::stride]:
            name = f.name if f.name not in names else f"{index:06d}_{f.name}"   # a COCO json's sub-folders
            names.add(name)
            img, why = try_read_image(f)   # never blocks on a FIFO, never raises on a corrupt file
            if img is None:
                self.skipped.add(f, why or "unreadable")
                continue
            yield SeqFrame(index, img, name, f, keys)


def expand_sources(paths: list[str | Path], sequence: bool = False) -> list[FrameSeq]:
    """The SOURCES arguments → sequences (not yet read), each with a unique path-safe ``slug``."""
    out: list[FrameSeq] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: not found (a video, an image folder, a mined-frame folder or its "
                            f"{MANIFEST}, or a COCO .json)")
        if (p / MANIFEST).is_file() or (p.is_file() and p.name.endswith(".jsonl")):
            out += _manifest_seqs(p, p / MANIFEST if p.is_dir() else p)
        elif p.is_file() and p.suffix.lower() == ".json":
            out.append(_coco_seq(p))
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            out.append(FrameSeq("images", p, str(p), sequence, files=[p]))
        else:
            for s in expand_mine_sources([p]):   # videos by extension; a folder's videos and its images
                if s.kind == "video":
                    out.append(FrameSeq("video", s.path, str(s.path), True))
                else:
                    src = ImageFolderSource(s.path)
                    _open(src)
                    out.append(FrameSeq("images", s.path, str(s.path), sequence, files=list(src.files)))
    named = name_sources([SourceSpec(Path(s.label).stem or Path(s.label).name, s.label) for s in out])
    for s, spec in zip(out, named):
        s.slug = spec.name
    return out


def check_sources(seqs: list[FrameSeq]) -> None:
    """Open each video and read its first frame; a listed source must hold at least one frame.
    A :class:`DataError` naming the source otherwise (before the teacher runs or anything is written)."""
    for s in seqs:
        if s.kind == "video":
            src = VideoFileSource(s.path)
            _open(src)
            try:
                first = src.read()
            finally:
                src.close()
            if first is None:
                raise DataError("no frame decodes (not a video, or a codec OpenCV lacks here)", path=s.path)
        elif not (s.files or s.records):
            raise DataError("no frames listed", path=s.path)


def _open(src: VideoFileSource | ImageFolderSource) -> None:
    try:
        src.open()
    except SourceError as e:
        raise DataError(str(e)) from None


def _manifest_seqs(p: Path, manifest: Path) -> list[FrameSeq]:
    try:
        records = read_manifest(manifest)
    except (OSError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise DataError(f"cannot read ({e})", path=manifest) from None
    groups: dict[str, list[dict]] = {}
    for r in records:
        if isinstance(r, dict) and isinstance(r.get("frame"), int) and isinstance(r.get("source"), str):
            groups.setdefault(r["source"], []).append(r)
    if not groups:
        raise DataError("no frames listed (lines need source, frame and path)", path=manifest)
    return [FrameSeq("manifest", p, key, True, records=sorted(rs, key=lambda r: r["frame"]))
            for key, rs in groups.items()]


def _coco_seq(p: Path) -> FrameSeq:
    from flowdet.data.coco import default_images_dir, read_json
    from flowdet.data.records import split_video_frame

    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError("'images' must be a list", path=p, field="images")
    root = default_images_dir(p, data)
    names = [im.get("file_name") for im in data["images"] if isinstance(im, dict)]
    files = [root / n for n in names if isinstance(n, str) and n and split_video_frame(n)[1] is None]
    if len(files) < len(names):
        from flowdet import log

        log.warn(f"{p}: {len(names) - len(files)} image entr(y/ies) without a file name or naming a video frame "
                 "left out (label the video itself)")
    return FrameSeq("coco", p, str(p), False, files=files)
