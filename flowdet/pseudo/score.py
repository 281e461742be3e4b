"""Pseudo-labels scored against labels the user holds back (``pseudo-label --score-against LABELS``).

Precision / recall at IoU ≥ 0.5 with flowdet's one matching rule (:func:`flowdet.metrics.prf.greedy_match`:
by falling score, best IoU first, a match on a crowd / ignore label neither TP nor FP), for:

- ``before``: the teacher's raw detections at ``conf`` (what a plain score threshold would keep);
- ``after_track``: the boxes confirmed tracks carry; ``after``: those plus the gap fills (the training boxes);
- ``ignore``: how many ignore regions lie on a labelled object (IoU ≥ 0.5: an object the filter did not
  confirm, kept out of the negatives) and how many of the objects ``after`` misses lie under one.

Frames are matched to labelled images by identity: the image file's resolved path, or a video's path
and frame number (``video.mp4#000123`` labels). Single-class teacher or labels: class-agnostic; else
classes are matched by name. numpy; torch-free.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.core.boxes import box_iou
from flowdet.core.detections import Detections
from flowdet.errors import DataError
from flowdet.metrics.prf import FP, TP, greedy_match
from flowdet.pseudo.track_filter import TRACK, PseudoBoxes

IOU = 0.5
SETS = ("before", "after_track", "after")


def _pr(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None}


class PseudoScorer:
    """Index the labels once (before the teacher loads); :meth:`bind` the teacher's class names; :meth:`add`
    each labelled frame; :meth:`result` the counts."""

    def __init__(self, labels: str | Path):
        from flowdet.data.coco import load_coco

        ds = load_coco(labels, check_images=False)
        self.path, self.names = Path(labels), ds.names
        self.records = {(str(Path(r.file).resolve()), r.frame_index): r for r in ds.records}
        self.videos = {k[0] for k in self.records if k[1] is not None}
        self.bind(ds.names)
        self.counts = {s: [0, 0, 0] for s in SETS}
        self.images = self.tracked = self.gt = self.ignore_regions = self.ignore_on_objects = self.missed_under_ignore = 0

    def bind(self, teacher_names: list[str]) -> None:
        """The teacher's classes: one class on either side → class-agnostic; else matched by name."""
        self.agnostic = len(self.names) == 1 or len(teacher_names) == 1
        by_name = {n: i for i, n in enumerate(self.names)}
        self.class_map = np.array([0 if self.agnostic else by_name.get(n, -1) for n in teacher_names], np.int64)

    def covers(self, keys: list[tuple[str, int | None]]) -> bool:
        """Whether any of these frame identities (a video: (path, None) stands for all its frames) is labelled."""
        return any(k in self.records or (k[1] is None and k[0] in self.videos) for k in keys)

    def record_of(self, keys: tuple) -> Any:
        return next((self.records[k] for k in keys if k in self.records), None)

    def add(self, keys: tuple, raw: Detections, pseudo: PseudoBoxes, conf: float, tracked: bool = True) -> bool:
        """Score one frame when it is labelled (returns whether it was); ``tracked``: its source went through
        the track filter (else its pseudo-boxes are the teacher's >= conf: after = before)."""
        rec = self.record_of(keys)
        if rec is None:
            return False
        self.images += 1
        self.tracked += int(tracked)
        gt_cls = np.zeros(len(rec.classes), np.int64) if self.agnostic else rec.classes
        self.gt += int((~rec.ignore).sum())
        hi = raw.scores >= conf
        kept = pseudo.kept()
        sets = {"before": (raw.boxes[hi], raw.scores[hi], raw.class_ids[hi]),
                "after_track": _cols(pseudo, kept & (pseudo.origin == TRACK)),
                "after": _cols(pseudo, kept)}
        for name, (boxes, scores, cls) in sets.items():
            used = self._count(name, boxes, scores, self.class_map[cls] if len(cls) else cls, rec.boxes, gt_cls,
                               rec.ignore)
            if name == "after":
                missed = ~used & ~rec.ignore
        ign = pseudo.boxes[pseudo.ignore]
        self.ignore_regions += len(ign)
        real = rec.boxes[~rec.ignore]
        if len(ign) and len(real):
            iou = box_iou(np.asarray(ign, np.float32), np.asarray(real, np.float32))
            self.ignore_on_objects += int((iou >= IOU).any(1).sum())
            self.missed_under_ignore += int((iou[:, missed[~rec.ignore]] >= IOU).any(0).sum())
        return True

    def _count(self, name: str, boxes, scores, cls, gt, gt_cls, gt_ignore) -> np.ndarray:
        """Add one set's TP / FP / FN; → the labelled boxes matched (over all classes)."""
        used_all = np.zeros(len(gt), bool)
        c = self.counts[name]
        for k in np.unique(np.concatenate([gt_cls, cls]).astype(np.int64)):
            d, g = cls == k, gt_cls == k
            status, used = greedy_match(boxes[d], scores[d], gt[g], gt_ignore[g], IOU)
            c[0] += int((status == TP).sum())
            c[1] += int((status == FP).sum())
            c[2] += int((~used & ~gt_ignore[g]).sum())
            used_all[np.nonzero(g)[0][used]] = True
        return used_all

    def result(self) -> dict[str, Any]:
        if not self.images:
            raise DataError("none of its images was among the frames labelled (matched by file path, or by "
                            "video and frame number)", path=self.path)
        out: dict[str, Any] = {"labels": str(self.path), "images": self.images, "tracked_images": self.tracked,
                               "gt_boxes": self.gt, "iou": IOU, "class_agnostic": self.agnostic}
        out.update({s: _pr(*self.counts[s]) for s in SETS})
        out["ignore"] = {"regions": self.ignore_regions, "on_objects": self.ignore_on_objects,
                         "missed_objects_under_ignore": self.missed_under_ignore}
        return out


def _cols(p: PseudoBoxes, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return p.boxes[m], p.scores[m], p.class_ids[m]


def format_score(s: dict[str, Any], conf: float) -> list[str]:
    """The lines printed for a score (also what docs quote)."""
    def pr(d: dict) -> str:
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        return f"P {f(d['precision'])} R {f(d['recall'])} (TP {d['tp']}, FP {d['fp']}, FN {d['fn']})"

    ig = s["ignore"]
    head = (f"scored against {s['labels']}: {s['images']} images, {s['gt_boxes']} labelled boxes, IoU {s['iou']}"
            + (" (class-agnostic)" if s["class_agnostic"] else ""))
    if not s["tracked_images"]:
        lines = [head + "; no source in time order: the track filter did not run (after = before)",
                 f"  teacher >= {conf}: {pr(s['before'])}"]
    else:
        lines = [head + ("" if s["tracked_images"] == s["images"] else f" ({s['tracked_images']} tracked)"),
                 f"  before the track filter (teacher >= {conf}): {pr(s['before'])}",
                 f"  after, track boxes:                   {pr(s['after_track'])}",
                 f"  after, track + gap boxes:             {pr(s['after'])}"]
    return lines + [f"  ignore regions: {ig['regions']}, {ig['on_objects']} on a labelled object; "
                    f"{ig['missed_objects_under_ignore']} missed objects lie under one"]
