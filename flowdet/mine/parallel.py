"""``flowdet mine --workers N``: one source (video or image folder) per worker process.

Each worker decodes its source exactly as the sequential path does (``_mine_source``: the same
sampling, dedupe and JPEG bytes) but appends its manifest lines to ``parts/<slug>.jsonl`` (fsync'd,
so an interrupted worker resumes from its part like the sequential path resumes from the manifest).
The parent merges each finished part into ``manifest.jsonl`` **in source order**, skipping lines
already there, then deletes the part — so the manifest is the same, line for line, as with one
worker, and a crash mid-merge loses nothing (the next run merges the rest). Torch-free; workers
are spawned, not forked (cv2's thread pools do not survive a fork reliably).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

PARTS = "parts"


def merge_part(path: Path, manifest) -> int:
    """Append the lines of one part file that ``manifest`` lacks, then delete the part; lines added."""
    from flowdet.mine.manifest import parse_records

    added = 0
    for _, rec in parse_records(path)[0]:  # a torn last line of an interrupted worker is left out
        if not manifest.has(rec["source"], rec["frame"]):
            manifest.append(rec)
            added += 1
    path.unlink()
    return added


def merge_leftover_parts(out: Path, manifest) -> int:
    """Parts an interrupted parallel run left behind, merged before anything else is mined."""
    parts = out / PARTS
    if not parts.is_dir():
        return 0
    added = sum(merge_part(p, manifest) for p in sorted(parts.glob("*.jsonl")))
    if not any(parts.iterdir()):
        parts.rmdir()
    return added


def mine_parallel(srcs: list, out: Path, manifest, worker: Callable[..., dict], args: tuple,
                  workers: int) -> Iterator[tuple[object, dict]]:
    """(source, row) in source order, each after its frames are in ``manifest``. ``worker(src, out,
    frames already held, *args)`` mines one source into ``out/parts/<slug>.jsonl`` (module-level:
    it is pickled into the spawned process)."""
    (out / PARTS).mkdir(exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(worker, src, str(out), sorted(manifest.seen.get(src.key, ())), *args) for src in srcs]
        for src, fut in zip(srcs, futures):
            row = fut.result()
            part = out / PARTS / f"{src.slug}.jsonl"
            if part.is_file():
                merge_part(part, manifest)
            yield src, row
    parts = out / PARTS
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
