"""Frame mining: videos and image folders → de-duplicated JPEG frames + ``manifest.jsonl``.

Torch-free (numpy + cv2). Layout under ``out``::

    manifest.jsonl          one JSON line per kept frame (see ``ManifestLine`` keys below)
    sources.json            per-source completion state (lets a re-run skip finished sources)
    frames/<slug>/<frame:06d>.jpg

Guarantees:
- resumable and idempotent: a frame already in the manifest (same source + frame index) is never
  written again; a source finished with the same sampling parameters, and unchanged since (sizes and
  mtimes of its files), is not even decoded again; one run at a time per folder (a lock), and a
  manifest line listed twice is kept once (``flowdet/mine/manifest.py``);
- crash-consistent: each JPEG is written atomically *before* its manifest line, and each line is
  appended with flush + fsync, so an interrupted run leaves only whole lines (a torn last line is
  cut off on the next run) and at worst an orphan JPEG that the next run overwrites;
- frame-count metadata is never trusted: a video is read until the decoder stops;
- an unreadable or truncated video is reported and skipped; the other sources continue.

Near-duplicates are dropped by the mean absolute difference (0–1) between 32×18 grayscale
thumbnails of a frame and of the last *kept* frame of the same source; ``dedupe=0`` keeps all.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from flowdet import log
from flowdet.core.media import IMAGE_EXTS, VIDEO_EXTS
from flowdet.errors import DataError, InputError
from flowdet.mine.manifest import Manifest, load_state, parse_records, source_stamp
from flowdet.paths import file_root, is_inside, keep_inside, within
from flowdet.utils import atomic_write_bytes, atomic_write_json

THUMB_SIZE = (32, 18)  # (w, h) of the dedupe thumbnail: 16:9, tiny enough to be noise-robust
MANIFEST = "manifest.jsonl"
STATE = "sources.json"


@dataclass(frozen=True)
class Source:
    kind: str  # "video" | "images"
    path: Path  # the video file or the image folder
    key: str  # stable identity written to the manifest ("source")

    @property
    def slug(self) -> str:
        digest = hashlib.sha1(self.key.encode()).hexdigest()[:8]
        return f"{self.path.stem or self.path.name}-{digest}"


def expand_sources(paths: list[str | Path]) -> list[Source]:
    """Video files, image folders, and folders of videos → sources (a folder may give both)."""
    out: list[Source] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: no such video or folder")
        if not p.is_file() and not p.is_dir():
            raise DataError("not a regular file or a folder (not opened)", path=p)
        if p.is_file():
            if p.suffix.lower() not in VIDEO_EXTS:
                raise DataError(f"{p}: not a video ({', '.join(VIDEO_EXTS)}) or a folder")
            out.append(Source("video", p, str(p.resolve())))
            continue
        named = keep_inside(p, [f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTS and not f.is_dir()])
        videos = sorted(f for f in named if f.is_file())
        odd = sorted(set(named) - set(videos))
        if odd:  # FIFOs/devices named x.mp4: never opened (a read would block), but said
            log.warn(f"skipped {len(odd)} video name(s) that are not regular files (not opened): "
                     + ", ".join(str(f) for f in odd[:3]) + (" …" if len(odd) > 3 else ""))
        out += [Source("video", v, str(v.resolve())) for v in videos]
        images = _list_images(p, warn=True)
        if images:
            out.append(Source("images", p, str(p.resolve())))
        if not videos and not images:
            raise DataError(f"{p}: folder holds no videos or images")
    return out


def _list_images(folder: Path, warn: bool = False) -> list[Path]:
    # not is_file(): a FIFO or device named x.jpg is listed, then refused (and counted) by the reader
    listed = sorted(f for f in folder.iterdir() if not f.is_dir() and f.suffix.lower() in IMAGE_EXTS)
    # a link out of the folder is never read (flowdet.paths); said once, when the sources are collected
    return keep_inside(folder, listed) if warn else [f for f in listed if is_inside(folder, f)]


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """BGR frame → 18×32 float32 grayscale in [0, 1] (the dedupe signature)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(gray, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def dhash(frame: np.ndarray) -> str:
    """64-bit difference hash (9×8 grayscale, horizontal gradient signs) as 16 hex digits."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def iter_video(path: Path, keep: FrameSampler) -> Iterator[tuple[int, float | None, np.ndarray | None]]:
    """(frame index, seconds, frame or None when not sampled) until the decoder stops.

    Frames the sampler skips are only ``grab()``-ed (demuxed, not colour-converted)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError("cannot open (unreadable or truncated container)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps = fps if 0.0 < fps < 1000.0 else 0.0
    keep.fps = fps
    idx = 0
    try:
        while True:
            if not cap.grab():
                break
            t = idx / fps if fps else (cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 or None)
            if keep(idx, t):
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                yield idx, t, frame
            else:
                yield idx, t, None
            idx += 1
    finally:
        cap.release()


def video_frame_count(path: Path) -> int | None:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n if n > 0 else None


class FrameSampler:
    """Keep every ``every``-th frame, or one frame per 1/``fps`` seconds of video time."""

    def __init__(self, every: int | None = None, fps: float | None = None):
        if every is not None and fps is not None:
            raise InputError("give --every or --fps, not both")
        from flowdet.core import validate

        if every is not None:
            every = validate.number_in(every, "--every", 1, integer=True)
        if fps is not None:  # nan meant "off", inf / 1e300 a step of 0 that never advanced: a hang
            fps = validate.fps(fps)
        self.every, self.target_fps, self.fps = every or 1, fps, 0.0
        self._next_t = 0.0

    def __call__(self, idx: int, t: float | None) -> bool:
        if self.target_fps is None:
            return idx % self.every == 0
        if t is None:
            if not self.fps:  # image folders have no clock: --fps keeps every image
                return True
            t = idx / self.fps
        if t + 1e-9 < self._next_t:
            return False
        step = 1.0 / self.target_fps
        gap = (t + 1e-9 - self._next_t) / step
        if gap > 1000:  # a jump in the clock (a corrupt timestamp): skip ahead, not step by step
            self._next_t += math.floor(gap - 1) * step
        while self._next_t <= t + 1e-9:  # the next sample time strictly after this frame
            self._next_t += step
        return True


def read_manifest(path: str | Path) -> list[dict]:
    """Records of a manifest, ``path`` made absolute (relative to the manifest's folder). A torn last
    line is left out, a frame listed twice counted once, another bad line one DataError; a line whose
    file is not inside the manifest's folder (absolute, ``../``, a symlink pointing out:
    :func:`flowdet.paths.within`) is left out unread, and counted in one warning."""
    path = Path(path).absolute()  # records are relative to its folder, not to the working directory
    root = file_root(path)[0]
    out, seen, outside = [], set(), 0
    for _, rec in parse_records(path)[0]:
        if (rec["source"], rec["frame"]) in seen:
            continue
        seen.add((rec["source"], rec["frame"]))
        frame = within(root, path.parent / rec["path"])
        if frame is None:
            outside += 1
            continue
        rec["path"] = str(frame.resolve())
        out.append(rec)
    if outside:
        log.warn(f"{path}: {outside} line(s) name no file inside {root} (not read; skipped)")
    return out


def mine(sources: list[str | Path], out: str | Path, every: int | None = None, fps: float | None = None,
         max_frames: int | None = None, dedupe: float = 0.01, quality: int = 95,
         progress: bool | None = None, exist_ok: bool = False, workers: int = 1) -> dict:
    """Mine frames from videos / image folders into ``out`` (see module docstring).

    A folder mined with other sampling (``every``/``fps``/``dedupe``) is refused unless ``exist_ok``:
    frames sampled two ways in one manifest skew every later statistic without a trace.

    ``max_frames`` caps kept frames per source (frames kept by earlier runs count). ``workers`` > 1
    decodes that many sources at once, one per process (``parallel.py``); the manifest is the same.
    Returns a summary: totals (kept, dropped, already, read), per-source rows, errors, throughput."""
    from tqdm import tqdm

    from flowdet.core import validate

    dedupe = validate.number_in(dedupe, "--dedupe", 0, 1, hi_open=True)  # nan compared false: silently "off"
    if max_frames is not None:
        max_frames = validate.number_in(max_frames, "--max-frames", 1, integer=True)
    workers = validate.number_in(workers, "--workers", 1, integer=True)
    FrameSampler(every, fps)  # --every / --fps checked before anything is read
    srcs = expand_sources(list(sources))
    out = validate.writable_dir(out)
    params = {"every": every, "fps": fps, "max_frames": max_frames, "dedupe": dedupe}
    state_path = out / STATE
    manifest = Manifest(out / MANIFEST, lock=True)  # one run per folder: a second one is refused
    from flowdet.mine.parallel import merge_leftover_parts, mine_parallel

    t0 = time.perf_counter()
    rows, errors = [], []
    try:
        state = load_state(state_path)
        if not exist_ok:
            _check_same_sampling(out, state, params)
        merge_leftover_parts(out, manifest)
        stamps = {src.key: _stamp(src) for src in srcs}  # before decoding: a change meanwhile re-mines
        todo = []
        for src in srcs:
            prev = state.get(src.key, {})
            if prev.get("done") and prev.get("params") == params and prev.get("stamp") == stamps[src.key]:
                rows.append({"source": src.key, "status": "done-before", "read": 0, "kept": 0, "dropped": 0,
                             "already": len(manifest.seen.get(src.key, ())), "error": None})
            else:
                todo.append(src)

        def sequential():
            for src in todo:
                bar = tqdm(total=_total(src), desc=src.path.name, unit="frame", leave=False,
                           disable=None if progress is None else not progress)
                row = _mine_source(src, out, manifest, FrameSampler(every, fps), max_frames, dedupe, quality, bar)
                bar.close()
                yield src, row

        done = (mine_parallel(todo, out, manifest, _mine_part, (every, fps, max_frames, dedupe, quality), workers)
                if workers > 1 and len(todo) > 1 else sequential())
        for src, row in done:
            total = _total(src)
            stopped_early = max_frames is not None and len(manifest.seen.get(src.key, ())) >= max_frames
            if row["status"] == "ok" and total and row["read"] < total and not stopped_early:
                # metadata is only a hint: the decoder decides, but a shortfall is worth a word
                row["warning"] = f"decoded {row['read']} of {total} frames the header announces (truncated?)"
            rows.append(row)
            if row["error"]:
                errors.append(f"{src.path}: {row['error']}")
            if row["status"] == "ok":
                state[src.key] = {"done": True, "params": params, "stamp": stamps[src.key], "read": row["read"],
                                  "kept_total": len(manifest.seen.get(src.key, ()))}
                atomic_write_json(state_path, state, indent=1)
    finally:
        manifest.close()
    dt = time.perf_counter() - t0
    tot = {k: sum(r[k] for r in rows) for k in ("read", "kept", "dropped", "already")}
    return {"out": str(out), "manifest": str(out / MANIFEST), "sources": rows, "errors": errors,
            "frames_in_manifest": manifest.count, **tot, "seconds": dt,
            "workers": workers, "decoded_per_s": tot["read"] / dt if dt > 0 else 0.0, "written_per_s": tot["kept"] / dt if dt > 0 else 0.0}


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _mine_part(src: Source, out: str, already: list[int], every, fps, max_frames, dedupe: float, quality: int) -> dict:
    """One source in a worker process: manifest lines go to ``parts/<slug>.jsonl`` (see parallel.py)."""
    from flowdet.mine.parallel import PARTS

    (Path(out) / PARTS).mkdir(exist_ok=True)
    part = Manifest(Path(out) / PARTS / f"{src.slug}.jsonl")
    part.seen.setdefault(src.key, set()).update(already)  # frames the main manifest holds already
    try:
        return _mine_source(src, Path(out), part, FrameSampler(every, fps), max_frames, dedupe, quality, _NoBar())
    finally:
        part.close()


def _stamp(src: Source) -> str:
    """Sizes and mtimes of what ``src`` reads: "already mined" holds only while they are unchanged."""
    return source_stamp([src.path] if src.kind == "video" else _list_images(src.path))


def _total(src: Source) -> int | None:
    return video_frame_count(src.path) if src.kind == "video" else len(_list_images(src.path))


_SAMPLING = ("every", "fps", "dedupe")  # max_frames may grow between runs: that continues, it does not mix


def _check_same_sampling(out: Path, state: dict, params: dict) -> None:
    for key, rec in state.items():
        old = rec.get("params") or {}
        if any(old.get(k) != params[k] for k in _SAMPLING):
            def fmt(d: dict) -> str:
                return " ".join(f"--{k} {d.get(k)}" for k in _SAMPLING if d.get(k) is not None)
            raise InputError(f"holds frames mined with {fmt(old) or 'the defaults'} (from {Path(key).name}); "
                             f"mining with {fmt(params) or 'the defaults'} would mix two samplings in one "
                             "manifest: use a new --out, or --exist-ok to add them anyway", path=out)


def _mine_source(src: Source, out: Path, manifest: Manifest, sampler: FrameSampler, max_frames: int | None,
                 dedupe: float, quality: int, bar) -> dict:
    row = {"source": src.key, "status": "ok", "read": 0, "kept": 0, "dropped": 0, "already": 0, "error": None}
    last_sig: np.ndarray | None = None
    n_have = len(manifest.seen.get(src.key, ()))
    frames = iter_video(src.path, sampler) if src.kind == "video" else _iter_images(src.path, sampler, row)
    try:
        for idx, t, frame in frames:
            row["read"] += 1
            bar.update(1)
            if frame is None:
                continue
            sig = thumbnail(frame)
            if manifest.has(src.key, idx):  # kept by an earlier run: restore the dedupe state only
                row["already"] += 1
                last_sig = sig
                continue
            if max_frames is not None and n_have >= max_frames:
                break
            if dedupe > 0 and last_sig is not None and float(np.abs(sig - last_sig).mean()) <= dedupe:
                row["dropped"] += 1
                continue
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise OSError(f"JPEG encoding failed at frame {idx}")
            data = buf.tobytes()
            rel = Path("frames") / src.slug / f"{idx:06d}.jpg"
            try:  # a write error ends the run (every source would hit it); a read error ends only its source
                atomic_write_bytes(out / rel, data)  # the file first, then the line that points to it
                manifest.append({"source": src.key, "frame": idx, "time": None if t is None else round(t, 4),
                                 "hash": dhash(frame), "sha1": hashlib.sha1(data).hexdigest(),
                                 "path": rel.as_posix(), "width": int(frame.shape[1]), "height": int(frame.shape[0])})
            except OSError as e:
                from flowdet.errors import DataError

                raise DataError(f"cannot write ({e.strerror or e})", path=e.filename or out / rel) from None
            last_sig = sig
            n_have += 1
            row["kept"] += 1
    except OSError as e:
        row["status"], row["error"] = "error", str(e)
    if row["status"] == "ok" and row["read"] == 0:
        row["status"], row["error"] = "error", "no frames could be decoded (unreadable or truncated)"
    return row


def _iter_images(folder: Path, keep: FrameSampler, row: dict) -> Iterator[tuple[int, float | None, np.ndarray | None]]:
    for idx, f in enumerate(_list_images(folder)):
        if not keep(idx, None):
            yield idx, None, None
            continue
        from flowdet.core.imread import try_read_image

        img, why = try_read_image(f)
        if img is None:  # one bad file does not stop the folder; it is counted and named
            row.setdefault("unreadable", []).append(f.name)
            yield idx, None, None
            continue
        yield idx, None, img
