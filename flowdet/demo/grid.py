"""A grid of validation images with ground truth (green) and predictions (red), one PNG."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from flowdet.data.imread import try_read_image
from flowdet.runtime.predictor import Predictor


def prediction_grid(predictor: Predictor, ann_path: Path, images_dir: Path, out_path: Path,
                    n: int = 6, cols: int = 3, conf: float = 0.3, tile_w: int = 480) -> Path:
    """Draw GT and predictions on the first ``n`` images of a COCO set and tile them."""
    gt = json.loads(Path(ann_path).read_text())
    by_img: dict[int, list] = {}
    for a in gt.get("annotations", []):
        by_img.setdefault(a["image_id"], []).append(a["bbox"])
    tiles = []
    for im in gt["images"][:n]:
        img, _ = try_read_image(Path(images_dir) / im["file_name"])
        if img is None:  # unreadable: the grid shows the others
            continue
        det = predictor.predict([img], conf=conf)[0]
        thick = max(1, round(img.shape[1] / 640))
        for x, y, w, h in by_img.get(im["id"], []):
            cv2.rectangle(img, (int(x), int(y)), (int(round(x + w)), int(round(y + h))), (0, 220, 0), thick)
        for (x1, y1, x2, y2), s in zip(det.boxes, det.scores):
            p1, p2 = (int(x1) - 2, int(y1) - 2), (int(x2) + 2, int(y2) + 2)
            cv2.rectangle(img, p1, p2, (0, 0, 255), thick)
            cv2.putText(img, f"{s:.2f}", (p1[0], max(10, p1[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35 * thick, (0, 0, 255), 1, cv2.LINE_AA)
        scale = tile_w / img.shape[1]
        tiles.append(cv2.resize(img, (tile_w, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA))
    if not tiles:
        raise ValueError(f"{ann_path}: no readable images for the prediction grid")
    th = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    out_path = Path(out_path)
    cv2.imwrite(str(out_path), np.vstack(rows))
    return out_path
