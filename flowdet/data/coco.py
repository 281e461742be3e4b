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

``check_images=False`` reads headers only (:mod:`flowdet.core.imread`: file, size, pixel cap, truncation;
~0.3 ms vs 10–30 ms to decode a 1080p JPEG; train and eval use it); ``data check``/``stats``/``coco2yolo`` decode.
``iscrowd``/``ignore``/``difficult`` = 1 (read strictly: :meth:`ValidationReport.dont_care_flags`) → kept
with ``ignore=True`` (a don't-care region): left out of training targets. Evaluation follows pycocotools
on the same json (:meth:`CocoDataset.coco`): only ``iscrowd`` makes a don't-care (crowd) region, and each
box's ``area`` (which picks its small/medium/large range) is the json's ``area``, w·h of its bbox where
absent; ``dont_care="training"`` scores the ``ignore``/``difficult`` boxes as crowd too, as training treats them.
The json is walked here, not by ``pycocotools.coco.COCO`` (it crashes on a malformed entry and keeps the
last of duplicated ids); :meth:`CocoDataset.coco` gives the ``COCO`` of the *cleaned* data.
Video frames: ``file_name`` ``"video.mp4#000123"`` (``flowdet synth --video``) is frame 123 of
``images_dir/video.mp4``; the record gets ``frame_index`` and :func:`load_image` seeks it."""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flowdet import log
from flowdet.core.imread import probe as probe_image
from flowdet.data.validation import Problem, ValidationReport, class_name_problem  # noqa: F401  (re-exported)
from flowdet.errors import DataError
from flowdet.paths import OUTSIDE, file_root, within

# Boxes exceeding the image by less than this (float noise in x+w) are clipped without a report.
CLIP_TOLERANCE_PX = 0.01
# Which boxes evaluation treats as don't-care (crowd) regions: "iscrowd" — the json's iscrowd only, as
# pycocotools does (default); "training" — iscrowd, ignore or difficult, the boxes training leaves out.
DONT_CARE_RULES = ("iscrowd", "training")


@dataclass
class ImageRecord:
    """One clean image. Boxes are pixels of the original image; ``classes`` index ``names``."""

    image_id: int
    file: Path                 # absolute-or-relative path to open (the video file for a frame)
    file_name: str             # as written in the json
    width: int
    height: int
    boxes: np.ndarray          # [M, 4] float32 xyxy, clipped to the image, w, h > 0
    classes: np.ndarray        # [M] int64, contiguous 0..C-1 (order of CocoDataset.cat_ids)
    ignore: np.ndarray         # [M] bool, iscrowd/ignore/difficult boxes (don't-care regions)
    ann_ids: np.ndarray        # [M] int64, the COCO annotation ids
    frame_index: int | None = None  # frame number when file_name is "video.mp4#000123"
    crowd: np.ndarray | None = None  # [M] bool, the json's iscrowd (None: taken as ``ignore``)
    area: np.ndarray | None = None   # [M] float64, the json's area, else w·h of its bbox (None: w·h of boxes)

    def dont_care(self, rule: str = "iscrowd") -> np.ndarray:
        """[M] bool: the boxes evaluation scores as don't-care (crowd) regions under ``rule``
        (see :data:`DONT_CARE_RULES`)."""
        if rule not in DONT_CARE_RULES:
            raise ValueError(f"dont_care must be one of {', '.join(DONT_CARE_RULES)}, not {rule!r}")
        return self.ignore if rule == "training" or self.crowd is None else self.crowd

    def areas(self) -> np.ndarray:
        """[M] float64: the area COCO evaluation bins each box by (small / medium / large)."""
        if self.area is not None:
            return self.area
        b = self.boxes.astype(np.float64)
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


@dataclass
class CocoDataset:
    ann_path: Path
    images_dir: Path
    records: list[ImageRecord]
    cat_ids: list[int]         # COCO category id of class index i
    names: list[str]           # class name of class index i
    report: ValidationReport
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def to_coco_dict(self, dont_care: str = "iscrowd") -> dict[str, Any]:
        """The cleaned dataset as a COCO dict (clipped boxes, skipped images/boxes removed).

        As pycocotools reads the original json: each box keeps the json's ``area`` and ``"iscrowd": 1``
        marks the don't-care regions of ``dont_care`` (:data:`DONT_CARE_RULES`; matched detections
        are neither TP nor FP, unmatched ones are not misses). A training-ignored box keeps its
        ``"ignore": 1``, a key COCOeval does not read."""
        images, anns = [], []
        for r in self.records:
            images.append({"id": r.image_id, "file_name": r.file_name, "width": r.width, "height": r.height})
            rows = zip(r.boxes.astype(np.float64), r.classes, r.ignore, r.dont_care(dont_care), r.areas(), r.ann_ids)
            for b, c, ig, crowd, area, aid in rows:
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                anns.append({"id": int(aid), "image_id": r.image_id, "category_id": self.cat_ids[int(c)],
                             "bbox": [float(b[0]), float(b[1]), w, h], "area": float(area),
                             "iscrowd": int(bool(crowd)), **({"ignore": 1} if ig else {})})
        cats = [{"id": i, "name": n} for i, n in zip(self.cat_ids, self.names)]
        return {"info": self.info, "images": images, "annotations": anns, "categories": cats}

    def coco(self, dont_care: str = "iscrowd") -> Any:
        """A pycocotools ``COCO`` of the cleaned dataset (for COCOeval; ``dont_care``: see
        :meth:`to_coco_dict`)."""
        return coco_from_dict(self.to_coco_dict(dont_care))


def coco_from_dict(data: dict[str, Any]) -> Any:
    """pycocotools ``COCO`` built from a dict, without its progress prints on stdout."""
    from flowdet.utils import require

    coco_mod = require("pycocotools.coco")
    coco = coco_mod.COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


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
        if not (isinstance(im, dict) and _is_int(im.get("id")) and isinstance(im.get("file_name"), str)
                and im["file_name"]):
            raise DataError(f"expected an object with an integer 'id' and a 'file_name', got {type(im).__name__} "
                            f"{str(im)[:60]!r}", path=path, field=f"images[{i}]")
    return images


def split_video_frame(file_name: str) -> tuple[str, int | None]:
    """``"video.mp4#000123"`` → ("video.mp4", 123); anything else → (file_name, None)."""
    base, sep, frame = file_name.rpartition("#")
    if sep and base and frame.isdigit():
        return base, int(frame)
    return file_name, None


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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> int | None:
    if _is_int(v) and v > 0:
        return int(v)
    if isinstance(v, float) and math.isfinite(v) and v > 0 and v == int(v):
        return int(v)
    return None


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


def _clean_categories(data: dict, src: str, report: ValidationReport) -> tuple[list[int], list[str]]:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise DataError(f"{src}: 'categories' must be a non-empty list")
    by_id: dict[int, str] = {}
    for i, c in enumerate(cats):
        where = f"categories[{i}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")):
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
        if not isinstance(im, dict) or not _is_int(im.get("id")):
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
    report.images_skipped = report.images_total - len(kept)
    return kept


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
    cat_index = {c: i for i, c in enumerate(cat_ids)}
    images = _clean_images(data, src, images_dir, report, check_images, workers, progress)

    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise DataError(f"{src}: 'annotations' must be a list")
    report.boxes_total = len(anns)
    all_image_ids = {im["id"] for im in data["images"] if isinstance(im, dict) and _is_int(im.get("id"))}
    seen_ids: set[int] = set()
    per_image: dict[int, list[tuple]] = {i: [] for i in images}
    next_free_id = 1 + max([a["id"] for a in anns if isinstance(a, dict) and _is_int(a.get("id"))], default=0)
    for i, a in enumerate(anns):
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            report.add(src, where, "not an object (dropped)")
            report.boxes_dropped += 1
            continue
        aid = a.get("id")
        if not _is_int(aid):
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
