"""Unlabeled frames for ``flowdet train --unlabeled`` (and the efficiency grid's semi points): sources
resolved to frame paths, videos mined once, the leak checks. Torch-free, so the grid (flowdet.experiments)
can check and mine its ``--unlabeled`` sources before hours of training without loading torch.

Sources: what ``pretrain --frames`` reads (:func:`flowdet.mine.frames.resolve_frames`: image folders,
mined-frame folders / manifest.jsonl, .txt lists, COCO json images, single images), plus videos, mined
once at ``video_fps`` into ``<out>/unlabeled_frames`` by ``flowdet mine``'s code (resumable: a resumed run
reads the same manifest). A source without images or videos, a video that does not decode → one line.
"""
from __future__ import annotations

from pathlib import Path

from flowdet import log
from flowdet.errors import DataError

MINED_DIR = "unlabeled_frames"  # under the run folder: frames mined from --unlabeled videos


def _media(folder: Path) -> tuple[bool, list[Path]]:
    """(the folder holds any image, its video files), recursively."""
    from flowdet.core.media import IMAGE_EXTS, VIDEO_EXTS

    has_image, videos = False, []
    for f in folder.rglob("*"):
        suffix = f.suffix.lower()
        if suffix in IMAGE_EXTS and f.is_file():
            has_image = True
        elif suffix in VIDEO_EXTS and f.is_file():
            videos.append(f)
    return has_image, sorted(videos)


def resolve_unlabeled(sources: list[str], out: Path, video_fps: float, mine_videos: bool = True) -> list[Path]:
    """``semi.unlabeled`` → frame paths (videos mined into ``out/unlabeled_frames`` when ``mine_videos``,
    else read from its manifest); one-line :class:`DataError` for a source without frames or an
    undecodable video."""
    from flowdet.core.media import VIDEO_EXTS
    from flowdet.mine.frames import resolve_frames
    from flowdet.mine.miner import MANIFEST, read_manifest

    frames: list[Path] = []
    videos: list[Path] = []
    for raw in sources:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: unlabeled source not found (image or video folder, manifest.jsonl, .txt list, "
                            "COCO .json, image or video)", field="semi.unlabeled")
        if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
            videos.append(p)
            continue
        if p.is_dir() and not (p / MANIFEST).is_file():
            has_image, vids = _media(p)
            videos += vids
            if not has_image:
                if not vids:
                    raise DataError(f"{p}: no images or videos in this folder", field="semi.unlabeled")
                continue
        frames += resolve_frames([str(p)])  # one source at a time: an empty one is named
    if videos:
        mined = out / MINED_DIR
        if mine_videos:
            _mine(videos, mined, video_fps)
        keys = {str(v.resolve()) for v in videos}
        frames += [Path(r["path"]) for r in read_manifest(mined / MANIFEST) if r.get("source") in keys]
    seen: set[Path] = set()
    uniq = [f for f in frames if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    if not uniq:
        raise DataError(f"{', '.join(sources)}: no unlabeled frames", field="semi.unlabeled")
    return uniq


def _mine(videos: list[Path], out: Path, fps: float) -> None:
    from flowdet.mine.miner import mine

    log.info(f"unlabeled: taking {fps:g} frame(s)/s from {len(videos)} video(s) into {out} "
             "(once; resumed runs reuse them)")
    summary = mine(list[str | Path](videos), out, fps=fps)
    if summary["errors"]:
        n = len(summary["errors"])
        raise DataError(f"{summary['errors'][0]} ({n} of {len(videos)} video(s) could not be decoded; "
                        "re-encode or remove it)", field="semi.unlabeled")
    if not summary["frames_in_manifest"]:
        raise DataError(f"{videos[0]}: no frames decoded from the video(s)", field="semi.unlabeled")


def _example(frames: list[Path], leak: tuple[int, Path, str]) -> str:
    i, img, how = leak
    return f"e.g. {frames[i]}, {how}" if Path(frames[i]) == Path(img).resolve() else f"e.g. {frames[i]} = {img}, {how}"


def check_leaks(frames: list[Path], exclude: list[str], val_images: list[Path], val_name: str,
                what: str = "unlabeled frames", flag: str = "--unlabeled") -> None:
    """Refuse frames that are images of ``exclude`` (one line); say so when some are ``--val`` images.
    ``what`` / ``flag``: the frames' name and option in those lines (``train --pseudo``'s images too)."""
    from flowdet.mine.frames import resolve_frames
    from flowdet.mine.leakage import find_leaks

    if exclude:
        leaks = find_leaks(frames, resolve_frames(list(exclude)))
        if leaks:
            raise DataError(f"{len(leaks)} of {len(frames)} {what} are images of the excluded set "
                            f"({_example(frames, leaks[0])}): training on them leaks the evaluation set — "
                            f"remove them from {flag} or drop --exclude", path=", ".join(exclude))
    if val_images:
        leaks = find_leaks(frames, val_images)
        if leaks:
            log.warn(f"{len(leaks)} of {len(frames)} {what} are --val images ({_example(frames, leaks[0])}): "
                     f"the val score of this run is transductive (the model trained on those images "
                     f"without their labels) — as the new-camera protocol means to; --exclude {val_name} refuses it")


