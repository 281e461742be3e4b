"""The COCO validator: a parsed COCO dict → clean :class:`flowdet.data.records.ImageRecord` s and a
:class:`flowdet.data.validation.ValidationReport` naming every problem (see :mod:`flowdet.data.coco` for
the rules). Image files are probed (header or decode, in threads) through :func:`flowdet.core.imread.probe`;
a ``file_name`` leading out of the images folder is skipped unread."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from flowdet.core.imread import probe as probe_image
from flowdet.data.records import ImageRecord, split_video_frame
from flowdet.data.validation import ValidationReport, class_name_problem
from flowdet.errors import DataError
from flowdet.paths import OUTSIDE, within

# Boxes exceeding the image by less than this (float noise in x+w) are clipped without a report.
CLIP_TOLERANCE_PX = 0.01


def is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> int | None:
    if is_int(v) and v > 0:
        return int(v)
    if isinstance(v, float) and math.isfinite(v) and v > 0 and v == int(v):
        return int(v)
    return None


def _clean_categories(data: dict, src: str, report: ValidationReport) -> tuple[list[int], list[str]]:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise DataError(f"{src}: 'categories' must be a non-empty list")
    by_id: dict[int, str] = {}
    for i, c in enumerate(cats):
        where = f"categories[{i}]"
        if not isinstance(c, dict) or not is_int(c.get("id")):
            report.add(src, where, "not an object with an integer 'id' (ignored)")
            continue
        if c["id"] in by_id:
            report.add(src, f"{where}.id", f"duplicate category id {c['id']} (ignored)")
            continue
        name = c.get("name")
        if not isinstance(name, str) or not name:
            report.add(src, f"{where}.name", "missing name (using the id)")
            name = str(c["id"])
        elif (why := class_name_problem(name)) is not None:
            report.add(src, f"{where}.name", f"{why} (using the id)")
            name = str(c["id"])
        by_id[c["id"]] = name
    if not by_id:
        raise DataError(f"{src}: 'categories' has no valid entry")
    ids = sorted(by_id)  # contiguous class index = rank of the category id
    return ids, [by_id[i] for i in ids]


def _clean_images(data: dict, src: str, images_dir: Path, report: ValidationReport,
                  check_images: bool, workers: int, progress: bool) -> dict[int, dict]:
    """image id → {"file_name", "file", "frame", "width", "height"} of the usable images. A
    ``file_name`` that leads out of ``images_dir`` (absolute, ``../``, a symlink pointing out) is
    skipped unread (:func:`flowdet.paths.within`)."""
    imgs = data.get("images")
    if not isinstance(imgs, list):
        raise DataError(f"{src}: 'images' must be a list")
    report.images_total = len(imgs)
    kept: dict[int, dict] = {}
    id_of_file: dict[tuple[str, int | None], int] = {}  # one file (or video frame) is one image
    for i, im in enumerate(imgs):
        where = f"images[{i}]"
        if not isinstance(im, dict) or not is_int(im.get("id")):
            report.add(src, where, "not an object with an integer 'id' (skipped)")
            continue
        where = f"images[{i}] (id={im['id']})"
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            report.add(src, f"{where}.file_name", "missing (skipped)")
            continue
        if im["id"] in kept:
            report.add(src, f"{where}.id", "duplicate image id (skipped)")
            continue
        base, frame = split_video_frame(name)
        whole = within(images_dir, name) if frame is not None else None
        if whole is not None and whole.is_file():
            base, frame = name, None  # a real file that happens to contain '#'
        file = within(images_dir, base)
        if file is None:
            report.add(src, f"{where}.file_name", f"{name!r} is " + OUTSIDE.format(what="images folder", root=images_dir))
            continue
        same = id_of_file.setdefault((os.path.realpath(file), frame), im["id"])
        if same != im["id"]:  # scored twice, or once with boxes and once as a background image
            report.add(src, f"{where}.file_name", f"{name!r} is the same file as image id {same} (skipped)")
            continue
        kept[im["id"]] = {"file_name": name, "file": file, "frame": frame, "where": where,
                          "width": _positive_int(im.get("width")), "height": _positive_int(im.get("height"))}
    _check_files(kept, src, report, check_images, workers, progress)
    report.images_skipped = report.images_total - len(kept)
    return kept


def _check_files(kept: dict[int, dict], src: str, report: ValidationReport, check_images: bool, workers: int,
                 progress: bool) -> None:
    """Each kept image's file probed (header, or decoded with ``check_images``); an unreadable file, a
    frame past a video's end or a size other than the json's removes the image from ``kept`` (reported);
    a missing size is taken from the file."""
    # One probe per distinct file (all frames of a video share one), decoded in threads:
    # cv2 releases the GIL while decoding.
    files = sorted({(rec["file"], rec["frame"] is not None) for rec in kept.values()}, key=str)
    iterator: Any
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        iterator = pool.map(lambda f: probe_image(f[0], f[1], check_images), files)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(files), desc="checking images", unit="img", leave=False, disable=None)
        probed = dict(zip(files, iterator))
    for img_id, rec in list(kept.items()):
        err, size, n_frames = probed[(rec["file"], rec["frame"] is not None)]
        if err is None and rec["frame"] is not None and 0 < n_frames <= rec["frame"]:
            err = f"frame {rec['frame']} is past the end of the video ({n_frames} frames)"
        if err is not None:  # a problem of the file itself
            report.add(rec["file"], rec["where"], f"{err} (skipped)")
            del kept[img_id]
            continue
        w, h, field_name = rec["width"], rec["height"], f"{rec['where']}.width/height"
        if size is not None and (w is None or h is None):
            report.add(src, field_name, f"missing or invalid, using the file's {size[0]}x{size[1]}")
            rec["width"], rec["height"] = size
        elif size is not None and (w, h) != size:
            report.add(src, field_name, f"json says {w}x{h} but {rec['file'].name} is {size[0]}x{size[1]} (skipped)")
            del kept[img_id]
        elif w is None or h is None:
            report.add(src, field_name, "missing or not a positive integer (skipped)")
            del kept[img_id]


def _bbox_problem(bbox: Any) -> str | None:
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
        return f"not 4 numbers: {bbox!r}"
    if not all(math.isfinite(v) for v in bbox):
        return f"not finite: {bbox!r}"
    if bbox[2] <= 0 or bbox[3] <= 0:
        return f"width/height must be > 0: {bbox!r}"
    return None


def _json_area(ann: dict, src: str, where: str, report: ValidationReport) -> float:
    """The annotation's ``area`` as pycocotools uses it (it bins boxes small / medium / large); w·h of
    its (unclipped) bbox when absent, or when not a finite number >= 0 (reported)."""
    w, h = float(ann["bbox"][2]), float(ann["bbox"][3])
    area = ann.get("area")
    if area is None:
        return w * h
    if isinstance(area, (int, float)) and not isinstance(area, bool):
        value = float(area) if abs(area) < 1e300 else math.inf   # a 5000-digit int overflows float()
        if math.isfinite(value) and value >= 0:
            return value
    report.add(src, f"{where}.area", f"{str(area)[:40]!r} is not a number >= 0 (w·h of the bbox used)")
    return w * h


def clip_xywh(bbox: Any, width: float, height: float) -> tuple[list[float] | None, bool]:
    """COCO [x, y, w, h] → (xyxy clipped to the image or None when nothing is left, whether it
    moved by more than CLIP_TOLERANCE_PX)."""
    x, y, w, h = (float(v) for v in bbox)
    box = [x, y, x + w, y + h]
    out = [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
           min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]
    if out[2] - out[0] <= 0 or out[3] - out[1] <= 0:
        return None, True
    return out, max(abs(a - b) for a, b in zip(out, box)) > CLIP_TOLERANCE_PX


def validate_coco_dict(data: Any, src: str, images_dir: Path, check_images: bool = True,
                       workers: int = 4, progress: bool = False) -> tuple[list[ImageRecord], list[int], list[str], ValidationReport]:
    """Validate a parsed COCO dict. Records keep **float64** boxes (converters need exact values);
    :func:`load_coco` casts them to float32. An image whose ``file_name`` leaves ``images_dir``
    (absolute, ``../``, a symlink pointing out) is skipped unread."""
    report = ValidationReport(src)
    if not isinstance(data, dict):
        raise DataError(f"{src}: top level must be a JSON object with 'images' and 'categories'")
    cat_ids, names = _clean_categories(data, src, report)
    images = _clean_images(data, src, images_dir, report, check_images, workers, progress)
    per_image = _clean_annotations(data, src, images, {c: i for i, c in enumerate(cat_ids)}, report)
    records = []
    for img_id, img in images.items():
        rows = per_image[img_id]
        records.append(ImageRecord(
            image_id=img_id, file=img["file"], file_name=img["file_name"], width=img["width"], height=img["height"],
            boxes=np.array([r[0] for r in rows], dtype=np.float64).reshape(-1, 4),
            classes=np.array([r[1] for r in rows], dtype=np.int64),
            ignore=np.array([r[2] for r in rows], dtype=bool),
            ann_ids=np.array([r[3] for r in rows], dtype=np.int64),
            frame_index=img["frame"],
            crowd=np.array([r[4] for r in rows], dtype=bool),
            area=np.array([r[5] for r in rows], dtype=np.float64)))
        report.boxes_kept += len(rows)
    report.close(src)
    return records, cat_ids, names, report


def _clean_annotations(data: dict, src: str, images: dict[int, dict], cat_index: dict[int, int],
                       report: ValidationReport) -> dict[int, list[tuple]]:
    """image id → (xyxy clipped, class index, ignore, annotation id, iscrowd, area) of each usable box of
    the kept ``images``; every box dropped or clipped is reported (a missing id is assigned one)."""
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise DataError(f"{src}: 'annotations' must be a list")
    report.boxes_total = len(anns)
    all_image_ids = {im["id"] for im in data["images"] if isinstance(im, dict) and is_int(im.get("id"))}
    seen_ids: set[int] = set()
    per_image: dict[int, list[tuple]] = {i: [] for i in images}
    next_free_id = 1 + max([a["id"] for a in anns if isinstance(a, dict) and is_int(a.get("id"))], default=0)
    for i, a in enumerate(anns):
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            report.add(src, where, "not an object (dropped)")
            report.boxes_dropped += 1
            continue
        aid = a.get("id")
        if not is_int(aid):
            report.add(src, f"{where}.id", f"missing or not an integer (assigned {next_free_id})")
            aid, next_free_id = next_free_id, next_free_id + 1
        where = f"annotations[{i}] (id={aid})"
        reason = None
        if aid in seen_ids:
            reason = ("id", "duplicate annotation id")
        elif a.get("image_id") not in all_image_ids:
            reason = ("image_id", f"unknown image id {a.get('image_id')!r}")
        elif a.get("category_id") not in cat_index:
            reason = ("category_id", f"unknown category id {a.get('category_id')!r}")
        elif (bad := _bbox_problem(a.get("bbox"))) is not None:
            reason = ("bbox", bad)
        if reason:
            report.add(src, f"{where}.{reason[0]}", f"{reason[1]} (dropped)")
            report.boxes_dropped += 1
            continue
        seen_ids.add(aid)
        img = images.get(a["image_id"])
        if img is None:  # the image itself was skipped; already reported
            report.boxes_in_skipped_images += 1
            continue
        clipped, moved = clip_xywh(a["bbox"], img["width"], img["height"])
        if clipped is None:
            report.add(src, f"{where}.bbox", f"entirely outside the {img['width']}x{img['height']} image (dropped)")
            report.boxes_dropped += 1
            continue
        if moved:
            report.add(src, f"{where}.bbox", f"sticks out of the {img['width']}x{img['height']} image (clipped)")
            report.boxes_clipped += 1
        flags = report.dont_care_flags(a, src, where)
        ignore, crowd, area = any(flags.values()), flags.get("iscrowd", False), _json_area(a, src, where, report)
        per_image[a["image_id"]].append((clipped, cat_index[a["category_id"]], ignore, aid, crowd, area))
    return per_image
