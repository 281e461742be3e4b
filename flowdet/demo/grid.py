"""A grid of validation images with TP / FP / missed boxes (flowdet.demo.draw) and a legend, one PNG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet.core.boxes import xywh_to_xyxy
from flowdet.core.imread import try_read_image
from flowdet.demo.draw import draw_outcomes, legend_strip
from flowdet.paths import within
from flowdet.runtime.predict.predictor import Predictor

FALLBACK_CONF = 0.3  # the grid's threshold when the evaluation found none (a model that matched nothing)


def deployment_conf(metrics: dict[str, Any]) -> float:
    """The threshold the grid is drawn at: the best-F1 one the report's deployment table gives (so
    its TP / FP are the ones behind that table's precision), else :data:`FALLBACK_CONF`."""
    best = metrics.get("best_f1_conf")
    return float(best) if isinstance(best, (int, float)) and best > 0 and metrics.get("best_f1", 0) > 0 \
        else FALLBACK_CONF


def prediction_grid(predictor: Predictor, ann_path: Path, images_dir: Path, out_path: Path,
                    n: int = 6, cols: int = 3, conf: float = 0.3, tile_w: int = 480) -> dict[str, Any]:
    """Predict the first ``n`` images of a COCO set at ``conf``, draw TP / FP / misses, tile them
    under a legend. → {"path", "images", "conf", "TP", "FP", "miss"} (the counts the legend shows)."""
    gt = json.loads(Path(ann_path).read_text())
    by_img: dict[int, list] = {}
    for a in gt.get("annotations", []):
        if not a.get("iscrowd"):
            by_img.setdefault(a["image_id"], []).append(a["bbox"])
    tiles, totals = [], {"TP": 0, "FP": 0, "miss": 0}
    for im in gt["images"][:n]:
        path = within(images_dir, im["file_name"])  # never a file outside the images folder
        img = try_read_image(path)[0] if path is not None else None
        if img is None:  # unreadable: the grid shows the others
            continue
        det = predictor.predict([img], conf=conf)[0]
        labels = xywh_to_xyxy(np.asarray(by_img.get(im["id"], []), np.float32).reshape(-1, 4))
        tile, counts = draw_outcomes(img, det.boxes, det.scores, labels, width=tile_w)
        tiles.append(tile)
        for k in totals:
            totals[k] += counts[k]
    if not tiles:
        raise ValueError(f"{ann_path}: no readable images for the prediction grid")
    shown = len(tiles)
    th = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    grid = np.vstack(rows)
    out_path = Path(out_path)
    cv2.imwrite(str(out_path), np.vstack([legend_strip(grid.shape[1], totals), grid]))
    return {"path": str(out_path), "images": shown, "conf": conf, **totals}
