"""Crop sampling and photometric augmentation for the pretraining methods (numpy + cv2, no torch).

Every sampler is a picklable callable ``(frame HxWx3 uint8 BGR, rng) -> dict of uint8 arrays``
so DataLoader workers can run it; all randomness comes from the ``np.random.Generator`` passed in
(seeded per (seed, epoch, sample index)), which makes an epoch reproducible for an exact resume.
Boxes are (x0, y0, w, h) in frame pixels; crops that stick out of the frame are border-replicated.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from flowdet.pretrain.config import AugConfig, MethodConfig

Box = tuple[float, float, float, float]  # x0, y0, w, h


def crop_resize(img: np.ndarray, box: Box, out: int) -> np.ndarray:
    """The region ``box`` of ``img`` resampled to ``out``×``out`` (one affine warp, no copy of the frame)."""
    x0, y0, w, h = box
    sx, sy = out / w, out / h
    m = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]], dtype=np.float64)
    interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, m, (out, out), flags=interp, borderMode=cv2.BORDER_REPLICATE)


class PhotometricAug:
    """Colour jitter (brightness, contrast, saturation, hue) with probability ``color_p``, grayscale,
    optional Gaussian blur and horizontal flip — SimCLR/BYOL-style, done on uint8 BGR.

    ``draw(rng)`` draws one set of parameters and ``apply(img, params)`` applies it, so several
    crops can share one photometric draw (patch contrast jitters per frame, as the study did)."""

    def __init__(self, cfg: AugConfig, blur: bool = False):
        self.cfg, self.blur = cfg, blur

    def draw(self, rng: np.random.Generator) -> dict:
        c = self.cfg
        p: dict = {"jitter": None, "gray": False, "blur": 0.0, "flip": False}
        if rng.random() < c.color_p:
            p["jitter"] = (1.0 + rng.uniform(-c.brightness, c.brightness), 1.0 + rng.uniform(-c.contrast, c.contrast),
                           1.0 + rng.uniform(-c.saturation, c.saturation), rng.uniform(-c.hue, c.hue))
        p["gray"] = bool(rng.random() < c.gray_p)
        if self.blur and rng.random() < c.blur_p:
            p["blur"] = float(rng.uniform(0.1, 1.5))
        p["flip"] = bool(rng.random() < c.flip_p)
        return p

    def apply(self, img: np.ndarray, p: dict) -> np.ndarray:
        out = img
        if p["jitter"] is not None:
            out = self._jitter(out, *p["jitter"])
        if p["gray"]:
            g = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
            out = cv2.merge([g, g, g])
        if p["blur"] > 0:
            out = cv2.GaussianBlur(out, (0, 0), p["blur"])
        if p["flip"]:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(img, self.draw(rng))

    @staticmethod
    def _jitter(img: np.ndarray, bright: float, contrast: float, sat: float, hue: float) -> np.ndarray:
        x = img.astype(np.float32)
        mean = x.mean()
        x = (x * bright - mean) * contrast + mean
        hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 1] *= sat
        hsv[..., 0] = (hsv[..., 0] + hue * 180.0) % 180.0  # OpenCV hue is 0–180
        return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


def _inside(c: float, half: float, size: int) -> float:
    """Clamp a centre so a window of half-width ``half`` stays inside [0, size] when it fits."""
    return float(np.clip(c, half, size - half)) if 2 * half <= size else size / 2.0


class PatchGridSampler:
    """Patch contrast: an anchor anywhere in the frame, its ``positives`` edge neighbours (adjacent
    patches of a 3×3 grid) and ``negatives`` same-frame patches whose centres are at least
    ``min_neg_dist`` patch sides away; one colour jitter for the whole frame, flips per patch.
    Returns {"patches": [1 + P + K, crop, crop, 3], "centres": [1 + P + K, 2] (x, y) in patch sides}."""

    def __init__(self, m: MethodConfig, aug: AugConfig):
        self.p, self.crop, self.npos, self.nneg, self.min_d = m.patch, m.crop, m.positives, m.negatives, m.min_neg_dist
        self.aug = PhotometricAug(aug)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        h, w = img.shape[:2]
        p = float(min(self.p, w // 3, h // 3))
        cx = rng.uniform(1.5 * p, w - 1.5 * p)  # anywhere the 3×3 grid fits — the whole frame
        cy = rng.uniform(1.5 * p, h - 1.5 * p)
        neigh = [(p, 0.0), (-p, 0.0), (0.0, p), (0.0, -p)]
        order = rng.permutation(4)[: self.npos]
        centres = [(cx, cy)] + [(cx + neigh[i][0], cy + neigh[i][1]) for i in order]
        for _ in range(self.nneg):
            centres.append(self._far_centre(cx, cy, p, w, h, rng))
        colour = self.aug.draw(rng)  # one photometric draw per frame: the contrast is about context, not colour
        patches = []
        for x, y in centres:
            colour["flip"] = bool(rng.random() < self.aug.cfg.flip_p)
            patches.append(self.aug.apply(crop_resize(img, (x - p / 2, y - p / 2, p, p), self.crop), colour))
        return {"patches": np.stack(patches), "centres": np.asarray(centres, np.float32) / p}

    def _far_centre(self, cx: float, cy: float, p: float, w: int, h: int,
                    rng: np.random.Generator) -> tuple[float, float]:
        best, best_d = (p / 2, p / 2), -1.0
        for _ in range(20):
            x, y = rng.uniform(p / 2, w - p / 2), rng.uniform(p / 2, h - p / 2)
            d = math.hypot(x - cx, y - cy) / p
            if d >= self.min_d:
                return x, y
            if d > best_d:
                best, best_d = (x, y), d
        return best  # small frame: the farthest of the tries


class ViewSampler:
    """BYOL / Self-EMD views at the detector's scale: two overlapping large views (side = crop ×
    U(view_scale) frame px, aspect 3/4–4/3, centres at most ``view_shift`` × side apart) resized to
    ``crop``, plus ``small_views`` smaller-scale views cut from inside a large view and resized to
    ``small_crop``. Returns {"views": [2, crop, crop, 3], "small": [S, small_crop, small_crop, 3]}."""

    def __init__(self, m: MethodConfig, aug: AugConfig):
        self.m = m
        self.aug = PhotometricAug(aug, blur=True)

    def _box(self, rng: np.random.Generator, w: int, h: int, centre: tuple[float, float] | None, shift: float) -> Box:
        m = self.m
        side = m.crop * rng.uniform(*m.view_scale)
        r = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        bw, bh = min(side * math.sqrt(r), w), min(side / math.sqrt(r), h)
        if centre is None:
            cx, cy = rng.uniform(bw / 2, w - bw / 2), rng.uniform(bh / 2, h - bh / 2)
        else:
            cx = centre[0] + rng.uniform(-shift, shift) * bw
            cy = centre[1] + rng.uniform(-shift, shift) * bh
        cx, cy = _inside(cx, bw / 2, w), _inside(cy, bh / 2, h)
        return cx - bw / 2, cy - bh / 2, bw, bh

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        m = self.m
        h, w = img.shape[:2]
        b1 = self._box(rng, w, h, None, 0.0)
        b2 = self._box(rng, w, h, (b1[0] + b1[2] / 2, b1[1] + b1[3] / 2), m.view_shift)
        views = [self.aug(crop_resize(img, b, m.crop), rng) for b in (b1, b2)]
        small = []
        for k in range(m.small_views):
            x0, y0, bw, bh = (b1, b2)[k % 2]
            s = min(bw, bh) * rng.uniform(*m.small_scale)
            sx, sy = x0 + rng.uniform(0, bw - s), y0 + rng.uniform(0, bh - s)
            small.append(self.aug(crop_resize(img, (sx, sy, s, s), m.small_crop), rng))
        out = {"views": np.stack(views)}
        out["small"] = np.stack(small) if small else np.zeros((0, m.small_crop, m.small_crop, 3), np.uint8)
        return out


def _touches(box: Box, boxes_xyxy: np.ndarray) -> bool:
    if len(boxes_xyxy) == 0:
        return False
    x0, y0, w, h = box
    ix = np.minimum(x0 + w, boxes_xyxy[:, 2]) - np.maximum(x0, boxes_xyxy[:, 0])
    iy = np.minimum(y0 + h, boxes_xyxy[:, 3]) - np.maximum(y0, boxes_xyxy[:, 1])
    return bool(((ix > 0) & (iy > 0)).any())


class CenterPatchSampler:
    """Center loss: ``pos_per_image`` object-centred patches (side = patch × U(scale_jitter), moved
    to stay inside the frame) and ``neg_per_image`` patches of the same size range that touch no box
    (10 tries each). Returns {"patches": [P+N, crop, crop, 3], "labels": [P+N] (1 fg, 0 bg),
    "valid": [P+N] bool} — a negative that could not be placed, or positives of a box-less image,
    are marked invalid rather than dropped so every sample has the same shape."""

    def __init__(self, m: MethodConfig, aug: AugConfig | None, tries: int = 10):
        self.m, self.tries = m, tries
        self.aug = PhotometricAug(aug) if aug is not None else None

    def __call__(self, img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        m = self.m
        h, w = img.shape[:2]
        crops, labels, valid = [], [], []
        for _ in range(m.pos_per_image):
            s = min(m.patch * rng.uniform(*m.scale_jitter), w, h)
            if len(boxes):
                bx = boxes[rng.integers(len(boxes))]
                cx, cy = _inside((bx[0] + bx[2]) / 2, s / 2, w), _inside((bx[1] + bx[3]) / 2, s / 2, h)
                box, ok = (cx - s / 2, cy - s / 2, s, s), True
            else:
                box, ok = (0.0, 0.0, s, s), False
            crops.append(box), labels.append(1), valid.append(ok)
        for _ in range(m.neg_per_image):
            s = min(m.patch * rng.uniform(*m.scale_jitter), w, h)
            box, ok = (0.0, 0.0, s, s), False
            for _ in range(self.tries):
                cand = (rng.uniform(0, w - s), rng.uniform(0, h - s), s, s)
                if not _touches(cand, boxes):
                    box, ok = cand, True
                    break
            crops.append(box), labels.append(0), valid.append(ok)
        patches = []
        for b in crops:
            patch = crop_resize(img, b, m.crop)
            patches.append(self.aug(patch, rng) if self.aug is not None else patch)
        return {"patches": np.stack(patches), "labels": np.asarray(labels, np.int64), "valid": np.asarray(valid, bool)}
