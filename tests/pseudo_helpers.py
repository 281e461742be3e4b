"""A scripted teacher and a tiny video with known tracks, for the pseudo-label tests (no model, no torch)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from flowdet.core.detections import Detections

SIZE = (160, 120)          # (width, height)
SIDE = 10                  # object side, px


def truth(frames: int, objects: int = 2) -> list[np.ndarray]:
    """Per frame, the true xyxy boxes of ``objects`` squares drifting right (object i on row 30 + 40 i)."""
    out = []
    for k in range(frames):
        out.append(np.array([[10 + 3 * k + 7 * i, 30 + 40 * i, 10 + 3 * k + 7 * i + SIDE, 30 + 40 * i + SIDE]
                             for i in range(objects)], np.float32))
    return out


def write_video(path: Path, frames: int = 30, objects: int = 2) -> list[np.ndarray]:
    """A mp4v video of white squares on grey, and its COCO labels ``<stem>.json`` beside it
    (``video.mp4#000123`` file names, track_id per object). → the true boxes per frame."""
    w, h = SIZE
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    assert vw.isOpened()
    boxes = truth(frames, objects)
    images, anns = [], []
    for k, bb in enumerate(boxes):
        img = np.full((h, w, 3), 90, np.uint8)
        for i, b in enumerate(bb):
            cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[2]) - 1, int(b[3]) - 1), (255, 255, 255), -1)
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 0, "track_id": i + 1,
                         "bbox": [float(b[0]), float(b[1]), SIDE, SIDE], "area": SIDE * SIDE})
        vw.write(img)
        images.append({"id": k + 1, "file_name": f"{path.name}#{k:06d}", "width": w, "height": h})
    vw.release()
    path.with_suffix(".json").write_text(json.dumps({"images": images, "annotations": anns,
                                                     "categories": [{"id": 1, "name": "bottle"}]}))
    return boxes


class ScriptedTeacher:
    """A Predictor that finds the white squares (connected components), in call order, with scripted
    faults: ``miss[k]`` = object indices (left to right by row) it misses in the k-th frame it sees,
    ``false[k]`` = extra boxes (xyxy, score) it reports there; found objects score ``score``."""

    names = ["bottle"]
    cat_ids = [1]
    img_size = (SIZE[1], SIZE[0])

    def __init__(self, miss: dict | None = None, false: dict | None = None, score: float = 0.9):
        self.miss, self.false, self.score, self.seen = miss or {}, false or {}, score, 0

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65) -> list[Detections]:
        out = []
        for im in images:
            k = self.seen
            self.seen += 1
            n, _, stats, _ = cv2.connectedComponentsWithStats((im[..., 0] > 200).astype(np.uint8))
            found = sorted((tuple(s[:4]) for s in stats[1:n] if s[4] > 20), key=lambda s: (s[1], s[0]))
            boxes = [[x, y, x + bw, y + bh] for i, (x, y, bw, bh) in enumerate(found) if i not in self.miss.get(k, ())]
            scores = [self.score] * len(boxes)
            for b, s in self.false.get(k, []):
                boxes.append(list(b))
                scores.append(s)
            keep = np.asarray(scores, np.float32) >= conf
            out.append(Detections(np.asarray(boxes, np.float32).reshape(-1, 4)[keep],
                                  np.asarray(scores, np.float32)[keep], np.zeros(int(keep.sum()), np.int64)))
        return out
