"""TP / FP / miss drawings for the demo report: one colour per outcome, readable score labels, a legend.

A prediction is a TP or an FP by :func:`flowdet.metrics.prf.greedy_match` (the rule of the report's
P/R/F1 numbers, IoU ≥ 0.5, class-agnostic: the demo has one class); a ground-truth box no
prediction matched is a miss. The image is scaled to its display width *before* drawing, so
labels are drawn at the size they are read at, not shrunk afterwards.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from flowdet.metrics.prf import TP, greedy_match

# BGR; the names are the legend's and the report's
COLOURS = {"TP": (40, 200, 40), "FP": (40, 40, 240), "miss": (0, 190, 255)}
LEGEND = {"TP": "predictions matching a label (score on the box)",
          "FP": "predictions matching no label (score on the box)", "miss": "labels no prediction found"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_outcomes(img: np.ndarray, boxes: np.ndarray, scores: np.ndarray, gt: np.ndarray, width: int,
                  iou_thr: float = 0.5) -> tuple[np.ndarray, dict[str, int]]:
    """``img`` scaled to ``width`` px with TP / FP boxes (score labels) and missed labels drawn;
    → (image, {"TP": n, "FP": n, "miss": n}). Boxes xyxy in ``img``'s pixels."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    gt = np.asarray(gt, np.float32).reshape(-1, 4)
    status, matched = greedy_match(boxes, scores, gt, iou_thr=iou_thr)
    k = width / img.shape[1]
    vis = cv2.resize(img, (width, int(round(img.shape[0] * k))), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    thick = max(1, round(width / 500))
    for box in gt[~matched]:
        _box(vis, box * k, COLOURS["miss"], thick, pad=3)
    for box, s, st in zip(boxes, scores, status):
        colour = COLOURS["TP"] if st == TP else COLOURS["FP"]
        p1 = _box(vis, box * k, colour, thick, pad=1)
        label(vis, f"{s:.2f}", p1, colour)
    counts = {"TP": int((status == TP).sum()), "FP": int((status != TP).sum()), "miss": int((~matched).sum())}
    return vis, counts


def label(img: np.ndarray, text: str, at: tuple[int, int], colour: Sequence[int], scale: float = 0.45) -> None:
    """``text`` on a filled box of ``colour`` just above ``at`` (inside the image): readable on water."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x = int(min(max(at[0], 0), img.shape[1] - w - 2))
    y = int(at[1] - h - base - 2 if at[1] - h - base - 2 >= 0 else at[1] + 2)
    cv2.rectangle(img, (x, y), (x + w + 2, y + h + base + 2), tuple(int(c) for c in colour), -1)
    dark = sum(colour) / 3 > 110  # black text on light fills, white on dark
    cv2.putText(img, text, (x + 1, y + h + 1), _FONT, scale, (0, 0, 0) if dark else (255, 255, 255), 1, cv2.LINE_AA)


def legend_strip(width: int, counts: dict[str, int] | None = None) -> np.ndarray:
    """A white strip naming each colour (with its count when given), to stack over a drawing."""
    strip = np.full((26 * len(LEGEND) + 8, width, 3), 255, np.uint8)
    for i, name in enumerate(LEGEND):
        y = 8 + 26 * i
        cv2.rectangle(strip, (10, y), (30, y + 16), COLOURS[name], -1)
        line = legend_line(name, counts.get(name) if counts is not None else None)
        cv2.putText(strip, line, (40, y + 13), _FONT, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return strip


def legend_line(name: str, count: int | None = None) -> str:
    """``TP: 13 predictions matching a label (score on the box)`` (no count: ``TP: predictions …``)."""
    return f"{name}: {'' if count is None else f'{count} '}{LEGEND[name]}"


def _box(img: np.ndarray, box: np.ndarray, colour: Sequence[int], thick: int, pad: int) -> tuple[int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    p1, p2 = (int(x1) - pad, int(y1) - pad), (int(round(x2)) + pad, int(round(y2)) + pad)
    cv2.rectangle(img, p1, p2, tuple(int(c) for c in colour), thick)
    return p1
