"""The in-memory dataset every stage reads: :class:`ImageRecord` (one clean image and its boxes) and
:class:`CocoDataset` (the records, the contiguous class mapping, the validation report), as
:func:`flowdet.data.coco.load_coco` returns them; :func:`coco_from_dict` gives pycocotools the cleaned
data. Video frames: ``file_name`` ``"video.mp4#000123"`` is frame 123 of ``video.mp4``
(:func:`split_video_frame`; the record's ``frame_index``)."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flowdet.data.validation import ValidationReport

# Which boxes evaluation treats as don't-care (crowd) regions: "iscrowd" — the json's iscrowd only, as
# pycocotools does (default); "training" — iscrowd, ignore or difficult, the boxes training treats as ignore regions.
DONT_CARE_RULES = ("iscrowd", "training")


@dataclass
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


def split_video_frame(file_name: str) -> tuple[str, int | None]:
    """``"video.mp4#000123"`` → ("video.mp4", 123); anything else → (file_name, None)."""
    base, sep, frame = file_name.rpartition("#")
    if sep and base and frame.isdigit():
        return base, int(frame)
    return file_name, None
