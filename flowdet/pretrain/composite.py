"""InsLoc composites (numpy + cv2, no torch): crops of one frame pasted into windows of two others.

Yang et al., "Instance Localization for Self-supervised Detection Pretraining", CVPR 2021: a
foreground crop pasted at random positions and scales into two different backgrounds; the pretext
is to recognise the instance from the features of its box. Adapted to tiny objects: the pasted side
(√area) is drawn log-uniform in ``paste_scale`` detector pixels (8–32 px at 640, where FloW/Grogol
objects are), each composite is a ``crop``-px window of a background frame at the detector's scale
(1:1, no resize), and ``instances`` crops go into each composite so a batch holds many positives.

A sample is ``(source frame, background 1, background 2, rng)`` → {"views": uint8 [2, S, S, 3],
"boxes": float32 [2, K, 4] xyxy (the RoIs: pasted boxes jittered by ``box_jitter``, InsLoc's box
augmentation), "pasted": float32 [2, K, 4] (the exact pasted boxes)}. Each composite gets its own
colour jitter (no flip: the boxes would have to follow).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from flowdet.pretrain.config import AugConfig, MethodConfig
from flowdet.pretrain.crops import PhotometricAug, crop_resize


def warp_region(img: np.ndarray, x0: float, y0: float, w: float, h: float, out_w: int, out_h: int) -> np.ndarray:
    """The region (x0, y0, w, h) of ``img`` resampled to ``out_w``×``out_h`` (border replicated)."""
    sx, sy = out_w / w, out_h / h
    m = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]], dtype=np.float64)
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, m, (out_w, out_h), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _overlaps(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken)


class CompositeSampler:
    """Draws one InsLoc training sample (see the module docstring)."""

    def __init__(self, m: MethodConfig, aug: AugConfig, tries: int = 20):
        self.m, self.tries = m, tries
        self.aug = PhotometricAug(aug, blur=False)

    def _paste_size(self, rng: np.random.Generator, aspect: float) -> tuple[int, int]:
        lo, hi = self.m.paste_scale
        side = math.exp(rng.uniform(math.log(lo), math.log(hi)))  # √(w·h)
        w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        return max(1, round(w)), max(1, round(h))

    def __call__(self, src: np.ndarray, bg1: np.ndarray, bg2: np.ndarray,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        m, s = self.m, self.m.crop
        sh, sw = src.shape[:2]
        loga = math.log(m.paste_aspect)
        instances = []  # (source region, aspect) per instance: the same pixels go into both views
        for _ in range(m.instances):
            aspect = math.exp(rng.uniform(-loga, loga))
            side = math.exp(rng.uniform(math.log(m.paste_scale[0]), math.log(m.paste_scale[1])))
            side *= rng.uniform(*m.source_scale)
            w, h = min(side * math.sqrt(aspect), sw), min(side / math.sqrt(aspect), sh)
            instances.append(((rng.uniform(0, sw - w), rng.uniform(0, sh - h), w, h), aspect))
        views, rois, pasted = [], [], []
        for bg in (bg1, bg2):
            bh, bw = bg.shape[:2]
            side = min(s, bw, bh)  # the window at the detector's scale (1:1) when the frame allows
            canvas = crop_resize(bg, (rng.uniform(0, bw - side), rng.uniform(0, bh - side), side, side), s).copy()
            taken: list[tuple[int, int, int, int]] = []
            for (x0, y0, w, h), aspect in instances:
                pw, ph = self._paste_size(rng, aspect)
                box = (0, 0, pw, ph)
                for _ in range(self.tries):  # a free spot if there is one; the last try otherwise
                    px, py = int(rng.integers(0, s - pw + 1)), int(rng.integers(0, s - ph + 1))
                    box = (px, py, px + pw, py + ph)
                    if not _overlaps(box, taken):
                        break
                taken.append(box)
                canvas[box[1]:box[3], box[0]:box[2]] = warp_region(src, x0, y0, w, h, pw, ph)
            colour = self.aug.draw(rng)
            colour["flip"] = False
            views.append(self.aug.apply(canvas, colour))
            boxes = np.asarray(taken, np.float32)
            pasted.append(boxes)
            rois.append(self._jitter(boxes, rng))
        return {"views": np.stack(views), "boxes": np.stack(rois), "pasted": np.stack(pasted)}

    def _jitter(self, boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each corner moved by up to ``box_jitter`` × the box side, then clipped to the composite."""
        j = self.m.box_jitter
        if j <= 0:
            return boxes.copy()
        wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
        out = boxes + rng.uniform(-j, j, boxes.shape).astype(np.float32) * wh
        out = np.clip(out, 0, self.m.crop)
        out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1.0)  # never empty
        return np.clip(out, 0, self.m.crop).astype(np.float32)
