"""COCO json — the internal annotation format — read, validated, and indexed with pycocotools.

``load_coco(ann_path, images_dir)`` returns a :class:`CocoDataset`: a plain list of
:class:`ImageRecord` (what the training dataset, stats and converters consume), the contiguous
class mapping, and a :class:`ValidationReport` listing every problem found.

What the validator checks (each problem is recorded): the json parses and has ``images`` and a
non-empty ``categories`` (else a one-line :class:`flowdet.errors.DataError` with line/column); each image has a
unique integer ``id`` and a ``file_name`` inside the images folder (:func:`flowdet.paths.within`:
no absolute, ``../`` or symlinked way out) that exists, is no other image's file, decodes and matches
``width``/``height`` (else the image and its boxes are **skipped**; a missing size is read from the
decoded file); each box has a known ``image_id``/``category_id`` and 4 finite numbers with w, h > 0
(else **dropped**), is **clipped** when it sticks out, and a duplicated annotation id drops the later one.
The checks are :mod:`flowdet.data.coco_validate`'s; the record types are :mod:`flowdet.data.records`'s
(re-exported here).

``check_images=False`` reads headers only (:mod:`flowdet.core.imread`: file, size, pixel cap, truncation;
~0.3 ms vs 10–30 ms to decode a 1080p JPEG; train and eval use it); ``data check``/``stats``/``coco2yolo`` decode.
``iscrowd``/``ignore``/``difficult`` = 1 (read strictly: :meth:`ValidationReport.dont_care_flags`) → kept
with ``ignore=True`` (a don't-care region): training neither learns it nor calls it background
(flowdet.detect.loss). Evaluation follows pycocotools
on the same json (:meth:`CocoDataset.coco`): only ``iscrowd`` makes a don't-care (crowd) region, and each
box's ``area`` (which picks its small/medium/large range) is the json's ``area``, w·h of its bbox where
absent; ``dont_care="training"`` scores the ``ignore``/``difficult`` boxes as crowd too, as training treats them.
The json is walked here, not by ``pycocotools.coco.COCO`` (it crashes on a malformed entry and keeps the
last of duplicated ids); :meth:`CocoDataset.coco` gives the ``COCO`` of the *cleaned* data.
Video frames: ``file_name`` ``"video.mp4#000123"`` (``flowdet synth --video``) is frame 123 of
``images_dir/video.mp4``; the record gets ``frame_index`` and :func:`load_image` seeks it."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from flowdet import log
from flowdet.data.coco_validate import (  # noqa: F401  (clip_xywh, CLIP_TOLERANCE_PX re-exported)
    CLIP_TOLERANCE_PX,
    clip_xywh,
    is_int,
    validate_coco_dict,
)
from flowdet.data.records import (  # noqa: F401  (re-exported: the names every reader imports from here)
    DONT_CARE_RULES,
    CocoDataset,
    ImageRecord,
    coco_from_dict,
    split_video_frame,
)
from flowdet.data.validation import Problem, ValidationReport, class_name_problem  # noqa: F401  (re-exported)
from flowdet.errors import DataError
from flowdet.paths import file_root, within


def read_json(path: str | Path) -> Any:
    """json.load with one-line user errors: missing file, decode error with line/column."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: annotation file not found")
    try:
        with open(p, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise DataError("JSON nested too deeply to be an annotation file", path=p) from None
    except ValueError as e:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise DataError(f"invalid JSON ({str(e)[:120]})", path=p) from None
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror or e})", path=p) from None


def image_entries(data: Any, path: str | Path) -> list[dict]:
    """The ``images`` of a parsed COCO json, each an object with an integer ``id`` and a text
    ``file_name`` — else one :class:`DataError` naming the entry. For the readers that take images
    only (split, frames, label subsets, ``predict --ann``); :func:`validate_coco_dict` (every
    loader of boxes) reports and skips bad entries instead."""
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DataError("not a COCO json (no 'images' list)", path=path)
    for i, im in enumerate(images):
        if not (isinstance(im, dict) and is_int(im.get("id")) and isinstance(im.get("file_name"), str)
                and im["file_name"]):
            raise DataError(f"expected an object with an integer 'id' and a 'file_name', got {type(im).__name__} "
                            f"{str(im)[:60]!r}", path=path, field=f"images[{i}]")
    return images


def default_images_dir(ann_path: str | Path, data: Any = None) -> Path:
    """Where ``file_name``s are relative to when no folder is given: ``<json dir>/images`` (the
    ``flowdet synth`` layout) or the json's own folder — whichever holds the first image listed
    in ``data`` (a video's frames live next to the json), else ``images/`` when it exists.

    The json's ``info.images_dir`` (flowdet's converters and ``data split`` record it) comes first
    when :func:`flowdet.paths.file_root` follows it: inside the json's folder, or the folder flowdet
    wrote this json for. Anything else is a redirect by the file itself, not followed (one warning)."""
    parent = Path(ann_path).resolve().parent
    # images/ is a candidate only while it stays inside (a symlink out of the json's folder is not)
    candidates = [parent] if within(parent, "images") is None else [parent / "images", parent]
    info = data.get("info") if isinstance(data, dict) else None
    redirect = info.get("images_dir") if isinstance(info, dict) else None
    if isinstance(redirect, str) and redirect:
        root, why = file_root(ann_path, redirect)
        if why is None:
            candidates.insert(0, root)
        else:
            log.warn(f"{ann_path}: info.images_dir {why}")
    first = None
    if isinstance(data, dict) and isinstance(data.get("images"), list) and data["images"]:
        entry = data["images"][0]
        first = entry.get("file_name") if isinstance(entry, dict) else None
    if isinstance(first, str) and first:
        for c in candidates:
            if any(f is not None and f.exists() for f in (within(c, first), within(c, split_video_frame(first)[0]))):
                return c
    return candidates[0] if candidates[0].is_dir() else parent


def load_image(record: ImageRecord) -> np.ndarray:
    """The record's pixels as HxWx3 uint8 BGR (seeks the frame for video records); an unreadable
    file is a :class:`flowdet.core.imread.ImageReadError` naming it."""
    from flowdet.core.imread import ImageReadError, is_regular_file, read_image

    if record.frame_index is None:
        return read_image(record.file)
    import cv2

    if not is_regular_file(record.file):
        raise ImageReadError("video file not found or not a regular file", record.file)
    cap = cv2.VideoCapture(str(record.file))
    cap.set(cv2.CAP_PROP_POS_FRAMES, record.frame_index)
    ok, img = cap.read()
    cap.release()
    if not ok or img is None:
        raise ImageReadError(f"cannot read frame {record.frame_index}", record.file)
    return img


def load_coco(ann_path: str | Path, images_dir: str | Path | None = None, strict: bool = False,
              check_images: bool = True, workers: int | None = None, progress: bool = False) -> CocoDataset:
    """Read and validate a COCO json. ``images_dir`` defaults to :func:`default_images_dir`.

    ``check_images=True`` decodes every image; False reads headers only (size, cap, truncation).
    ``strict=True`` raises a one-line DataError on the first problem (after validating all).
    Problems are otherwise listed in ``dataset.report`` and the clean records are returned.
    """
    ann_path = Path(ann_path)
    data = read_json(ann_path)
    root = Path(images_dir) if images_dir is not None else default_images_dir(ann_path, data)
    if not root.is_dir():
        raise DataError(f"{root}: images folder not found (for {ann_path})")
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    records, cat_ids, names, report = validate_coco_dict(data, str(ann_path), root, check_images, workers, progress)
    for r in records:
        r.boxes = r.boxes.astype(np.float32)
    report.raise_if(strict)
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    return CocoDataset(ann_path, root, records, cat_ids, names, report, info)
