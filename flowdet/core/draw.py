"""Drawing detections on images (torch-free: shared by `flowdet predict`, the ONNX runtime and stream)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# BGR colours cycled by class id; the first is a saturated green that stands out on brown/blue water.
_PALETTE = [(0, 255, 0), (0, 0, 255), (255, 128, 0), (255, 0, 255), (0, 255, 255), (255, 255, 0)]


def color_for(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[int(class_id) % len(_PALETTE)]


def draw_detections(img: np.ndarray, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                    names: Sequence[str] | None = None, thickness: int | None = None) -> np.ndarray:
    """Return a copy of ``img`` (BGR uint8) with boxes xyxy and 'name score' labels.

    Line width and font scale follow the image size so tiny objects stay visible but not hidden."""
    out = img.copy()
    h, w = out.shape[:2]
    t = thickness or max(1, int(round(min(h, w) / 400)))
    font = max(0.35, min(h, w) / 1500)
    for b, s, c in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1),
                       np.asarray(class_ids).reshape(-1)):
        x1, y1, x2, y2 = (int(round(float(v))) for v in b)
        col = color_for(int(c))
        cv2.rectangle(out, (x1, y1), (x2, y2), col, t, cv2.LINE_AA)
        name = names[int(c)] if names is not None and 0 <= int(c) < len(names) else str(int(c))
        label = f"{name} {float(s):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        # Label above the box, or inside it when the box touches the top edge.
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(h - 1, y2 + th + 2)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty + base - 1), col, -1)
        cv2.putText(out, label, (x1, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA)
    return out
