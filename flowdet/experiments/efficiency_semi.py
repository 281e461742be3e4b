"""The semi-supervised points of the label-efficiency grid: kinds ``semi`` and ``pretrained+semi``.

A semi point is the scratch (or pretrained) point of the same (fraction, seed) — same labeled subset,
epochs, batch and seed — plus ``flowdet train --unlabeled LIST``, the code path a user's
``train --unlabeled`` takes. LIST (``<out>/subsets/unlabeled_<f>_s<seed>.txt``) names:

- the training images left out of the point's labeled subset, as **paths only**, read from the train
  json's ``images`` entries: their annotations are never written anywhere the unlabeled side reads, so
  the labels stay hidden by construction (the tests change them and check that no point's input moves);
- the frames of the grid's ``--unlabeled`` sources (folders, lists, videos — mined once into
  ``<out>/unlabeled_frames``, not once per point), less any that are training images.

Val images among them are refused before any training (the grid's exclusion, also passed to every
semi ``train`` as ``--exclude``) unless the grid is transductive: then ``train``'s one line says the val
score is transductive. Iterations: the labeled iterations equal the scratch point's (same subset,
epochs and batch); each step adds ``semi.ratio`` unlabeled frames per labeled image — more images per
step, not more steps.
"""
from __future__ import annotations

import os
from pathlib import Path

from flowdet import log

# The grid's kinds, here beneath efficiency.py and efficiency_report.py (both read them).
SEMI_KINDS = ("semi", "pretrained+semi")  # + train --unlabeled
PRETRAINED_KINDS = ("pretrained", "pretrained+semi")  # from the pretrained backbone
KINDS = ("scratch", "pretrained", *SEMI_KINDS)  # the order of the table, plot and verdict


def extra_frames(sources: list[str], out: Path, train_sets: list[str]) -> list[Path]:
    """The grid's ``--unlabeled`` sources → frame paths; videos mined once into ``out/unlabeled_frames`` at
    the ``semi.video_fps`` the detector runs get (``train_sets``). One line for an empty folder or a
    video that does not decode (flowdet.mine.unlabeled)."""
    if not sources:
        return []
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig
    from flowdet.mine.unlabeled import resolve_unlabeled

    fps = load_config(DetectConfig, None, train_sets).semi.video_fps
    return resolve_unlabeled(list(sources), out, fps)


def train_images(train_json: str | Path, images_root: str | Path) -> dict:
    """Image id → resolved path of every training image, from the json's ``images`` entries only."""
    from flowdet.data.coco import image_entries, read_json
    from flowdet.paths import keep_inside

    root = Path(images_root).resolve()
    named = {im["id"]: root / im["file_name"] for im in image_entries(read_json(Path(train_json)), train_json)}
    kept = set(keep_inside(root, list(named.values()), train_json))  # a name leading out of the root: not read
    return {i: p.resolve() for i, p in named.items() if p in kept}


def check_frames(frames: list[Path], exclude: list[str], val_list: str | None, val_name: str) -> None:
    """Before any training: refuse frames that are ``exclude`` images (one line), or — with ``val_list``
    (transductive) — say once that some are val images (flowdet.mine.unlabeled.check_leaks)."""
    if not frames:
        return
    from flowdet.mine.frames import resolve_frames
    from flowdet.mine.unlabeled import check_leaks

    check_leaks(frames, exclude, resolve_frames([val_list]) if val_list else [], val_name)


def write_unlabeled_list(images: dict, labeled_ids: set, extras: list[Path], path: Path) -> int:
    """Write the point's unlabeled frames to ``path`` (absolute paths, one a line): the training images
    whose id is not in ``labeled_ids``, then ``extras`` that are not training images. Returns the count;
    an empty list is not written (a point with nothing unlabeled is skipped)."""
    from flowdet.experiments.efficiency_io import write_path_list

    train = set(images.values())
    frames = [p for i, p in sorted(images.items(), key=lambda kv: str(kv[1])) if i not in labeled_ids]
    frames += [p for p in dict.fromkeys(Path(e).resolve() for e in extras) if p not in train]
    if frames:  # it names files under several roots (the images, the sources): written for their common one
        write_path_list(path, frames, os.path.commonpath([str(p.parent) for p in frames]))
    return len(frames)


def skipped_note(skipped: list[str]) -> str:
    """The one line for semi points with no unlabeled frame (all training labels used, no ``--unlabeled``)."""
    return (f"{len(skipped)} semi point(s) not run: no unlabeled frames (the whole training split is labeled "
            f"and no --unlabeled source adds any): {', '.join(skipped)}")


def warn_unused(sources: list[str], kinds: list[str]) -> None:
    if sources and not any(k in SEMI_KINDS for k in kinds):
        log.warn("--unlabeled: no semi kind in --kinds (semi, pretrained+semi): the unlabeled sources are not used")
