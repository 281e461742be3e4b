"""Training augmentation in numpy/cv2 (torch-free): letterbox, mosaic, random affine, mixup, HSV, flip.

Boxes are float32 [M, 4] xyxy in pixels, class indices int64 [M]. Every random draw comes from the
``numpy.random.Generator`` passed in, so a sample is a pure function of (seed, epoch, index): a resumed
run and any number of DataLoader workers reproduce it exactly.

Tiny objects are the point of this project, so boxes that end up under ``min_box_size`` pixels (w or h)
after augmentation are *dropped and counted* rather than kept as label noise; boxes pushed mostly out
of the frame are dropped too (counted separately).

Ignore (don't-care) regions travel as boxes of class :data:`IGNORE_CLASS` in the same arrays, so every
geometric step moves them exactly as it moves the labels; they are kept while any of them stays in
view (never dropped as tiny or mostly-out) and never counted as dropped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from flowdet.core.defaults import IGNORE_CLASS, PAD_VALUE
from flowdet.core.letterbox import letterbox


@dataclass
class AugmentConfig:
    """The ``augment`` section of a detection config (probabilities are per sample)."""

    mosaic_prob: float = 1.0
    mixup_prob: float = 1.0
    mixup_scale: list[float] = field(default_factory=lambda: [0.5, 1.5])
    hsv_prob: float = 1.0
    hsv_gains: list[float] = field(default_factory=lambda: [5.0, 30.0, 30.0])  # additive H(of 180), S, V
    flip_prob: float = 0.5
    degrees: float = 10.0
    translate: float = 0.1
    scale: list[float] = field(default_factory=lambda: [0.1, 2.0])
    shear: float = 2.0
    min_box_size: float = 2.0  # px after augmentation; smaller boxes are dropped and counted
    min_visible: float = 0.25  # share of a transformed box that must stay inside the image
    no_aug_epochs: int = -1  # last N epochs: plain letterbox only (and L1 loss on); -1 = auto (detect.config)
    multiscale: list[int] = field(default_factory=list)  # [min, max] px (multiples of 32); [] = off
    multiscale_every: int = 10  # iterations between size changes
    # Probability per sample of pasting the training set's own small objects (flowdet.data.copy_paste)
    # where they cover no box, at their own input-scale size. Off by default until screened at 30 epochs.
    copy_paste: float = 0.0
    copy_paste_max: int = 8  # copy-paste: 1 to this many crops per sample
    copy_paste_side: float = 32.0  # copy-paste: crops are the boxes whose longer side is under this (px, input scale)
    copy_paste_jitter: float = 0.1  # copy-paste: a crop is pasted at its input-scale size × U(1 − j, 1 + j)
    copy_paste_bank: int = 2000  # copy-paste: most crops held in memory (cut once at start, ~4 KB each)


class Sample(NamedTuple):
    img: np.ndarray  # [H, W, 3] uint8 BGR
    boxes: np.ndarray  # [M, 4] float32 xyxy
    classes: np.ndarray  # [M] int64; IGNORE_CLASS marks an ignore region


class AugResult(NamedTuple):
    img: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    dropped_tiny: int
    dropped_out: int


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def filter_boxes(boxes: np.ndarray, classes: np.ndarray, width: int, height: int, min_size: float,
                 min_visible: float = 0.0) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Clip to the image, drop boxes mostly outside it, then drop boxes under ``min_size`` px.

    Returns (boxes, classes, n_tiny, n_out). A box is 'out' when less than ``min_visible`` of its
    area survives the clip (or none does); it is 'tiny' when it is inside but w or h < min_size.
    An ignore region (:data:`IGNORE_CLASS`) stays while any of it is in view, and is never counted."""
    if boxes.shape[0] == 0:
        return _empty_boxes(), classes[:0].astype(np.int64), 0, 0
    before = _area(boxes)
    clipped = boxes.astype(np.float32).copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    after = _area(clipped)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    label = classes != IGNORE_CLASS
    gone = (w <= 0) | (h <= 0)
    out = gone | (label & (after < min_visible * np.maximum(before, 1e-9)))
    tiny = ~out & label & ((w < min_size) | (h < min_size))
    keep = ~out & ~tiny
    return clipped[keep], classes[keep].astype(np.int64), int(tiny.sum()), int((out & label).sum())


def letterbox_sample(s: Sample, out_hw: tuple[int, int]) -> Sample:
    canvas, r = letterbox(s.img, out_hw)
    return Sample(canvas, (s.boxes * r).astype(np.float32), s.classes)


def affine_matrix(in_hw: tuple[int, int], out_hw: tuple[int, int], rng: np.random.Generator, degrees: float,
                  translate: float, scale: tuple[float, float], shear: float) -> np.ndarray:
    """3×3 matrix: input centre → origin, rotate+scale, shear, → output centre + random translation."""
    ih, iw = in_hw
    oh, ow = out_hw
    c = np.array([[1, 0, -iw / 2], [0, 1, -ih / 2], [0, 0, 1]], np.float64)
    a = rng.uniform(-degrees, degrees)
    s = rng.uniform(scale[0], scale[1])
    r = np.eye(3)
    r[:2] = cv2.getRotationMatrix2D((0, 0), a, s)
    sh = np.eye(3)
    sh[0, 1] = np.tan(np.deg2rad(rng.uniform(-shear, shear)))
    sh[1, 0] = np.tan(np.deg2rad(rng.uniform(-shear, shear)))
    t = np.eye(3)
    t[0, 2] = ow / 2 + rng.uniform(-translate, translate) * ow
    t[1, 2] = oh / 2 + rng.uniform(-translate, translate) * oh
    return t @ sh @ r @ c


def transform_boxes(boxes: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Affine-map the 4 corners of each box and take their enclosing box (unclipped)."""
    if boxes.shape[0] == 0:
        return _empty_boxes()
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1),
                        np.stack([x2, y2], 1)], 1)  # [M, 4, 2]
    pts = corners @ m[:2, :2].T + m[:2, 2]
    return np.concatenate([pts.min(1), pts.max(1)], 1).astype(np.float32)


def random_affine(s: Sample, out_hw: tuple[int, int], rng: np.random.Generator, cfg: AugmentConfig) -> Sample:
    """Warp to ``out_hw`` (pad 114); boxes come back unclipped so the caller can measure visibility."""
    m = affine_matrix(s.img.shape[:2], out_hw, rng, cfg.degrees, cfg.translate, tuple(cfg.scale), cfg.shear)
    oh, ow = out_hw
    if np.allclose(m, np.eye(3)) and s.img.shape[:2] == (oh, ow):
        return s
    img = cv2.warpAffine(s.img, m[:2], (ow, oh), flags=cv2.INTER_LINEAR, borderValue=(PAD_VALUE,) * 3)
    return Sample(img, transform_boxes(s.boxes, m), s.classes)


def mosaic(samples: list[Sample], out_hw: tuple[int, int], rng: np.random.Generator,
           min_visible: float = 0.0) -> tuple[Sample, int]:
    """Four images around a random centre on a 2H×2W canvas (each letterbox-scaled to H×W first).

    Boxes are clipped to the tile each image occupies (those mostly cut off are dropped; their count
    is returned); the caller's random affine crops back to H×W."""
    oh, ow = out_hw
    canvas = np.full((2 * oh, 2 * ow, 3), PAD_VALUE, np.uint8)
    yc, xc = int(rng.uniform(0.5 * oh, 1.5 * oh)), int(rng.uniform(0.5 * ow, 1.5 * ow))
    all_boxes, all_cls, n_out = [], [], 0
    for k, s in enumerate(samples):
        h, w = s.img.shape[:2]
        r = min(oh / h, ow / w)
        nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
        img = cv2.resize(s.img, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        # Tile in canvas coords (x0, y0, x1, y1) and the matching crop of the resized image.
        if k == 0:
            x0, y0, x1, y1 = max(xc - nw, 0), max(yc - nh, 0), xc, yc
            cx0, cy0 = nw - (x1 - x0), nh - (y1 - y0)
        elif k == 1:
            x0, y0, x1, y1 = xc, max(yc - nh, 0), min(xc + nw, 2 * ow), yc
            cx0, cy0 = 0, nh - (y1 - y0)
        elif k == 2:
            x0, y0, x1, y1 = max(xc - nw, 0), yc, xc, min(yc + nh, 2 * oh)
            cx0, cy0 = nw - (x1 - x0), 0
        else:
            x0, y0, x1, y1 = xc, yc, min(xc + nw, 2 * ow), min(yc + nh, 2 * oh)
            cx0, cy0 = 0, 0
        canvas[y0:y1, x0:x1] = img[cy0:cy0 + (y1 - y0), cx0:cx0 + (x1 - x0)]
        b = (s.boxes * r + np.array([x0 - cx0, y0 - cy0] * 2, np.float32)).astype(np.float32)
        before = _area(b)
        b[:, [0, 2]] = b[:, [0, 2]].clip(x0, x1)
        b[:, [1, 3]] = b[:, [1, 3]].clip(y0, y1)
        after = _area(b)
        label = s.classes != IGNORE_CLASS  # an ignore region stays while any of it is in the tile
        keep = (after > 0) & (~label | (after >= min_visible * np.maximum(before, 1e-9)))
        n_out += int((~keep & label).sum())
        all_boxes.append(b[keep])
        all_cls.append(s.classes[keep])
    return Sample(canvas, np.concatenate(all_boxes), np.concatenate(all_cls).astype(np.int64)), n_out


def mixup(base: Sample, other: Sample, rng: np.random.Generator, scale: tuple[float, float]) -> Sample:
    """Blend 50/50 with another image, letterbox-scaled with jitter, maybe flipped, randomly cropped."""
    oh, ow = base.img.shape[:2]
    h, w = other.img.shape[:2]
    r = min(oh / h, ow / w) * rng.uniform(scale[0], scale[1])
    nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
    big = np.full((max(oh, nh), max(ow, nw), 3), PAD_VALUE, np.uint8)
    big[:nh, :nw] = cv2.resize(other.img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    boxes = other.boxes * r
    if rng.random() < 0.5:
        big = big[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = big.shape[1] - boxes[:, [2, 0]]
    oy = int(rng.integers(0, big.shape[0] - oh + 1))
    ox = int(rng.integers(0, big.shape[1] - ow + 1))
    crop = big[oy:oy + oh, ox:ox + ow]
    boxes = boxes - np.array([ox, oy, ox, oy], np.float32)
    img = cv2.addWeighted(base.img, 0.5, np.ascontiguousarray(crop), 0.5, 0.0)
    return Sample(img, np.concatenate([base.boxes, boxes.astype(np.float32)]),
                  np.concatenate([base.classes, other.classes]).astype(np.int64))


def augment_hsv(img: np.ndarray, rng: np.random.Generator, gains: tuple[float, float, float]) -> np.ndarray:
    """Additive hue (mod 180) / saturation / value shifts through lookup tables."""
    dh, ds, dv = (rng.uniform(-1, 1, 3) * np.asarray(gains)).round().astype(np.int64)
    h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.int64)
    lut_h = ((x + dh) % 180).astype(np.uint8)
    lut_s = np.clip(x + ds, 0, 255).astype(np.uint8)
    lut_v = np.clip(x + dv, 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def hflip(s: Sample) -> Sample:
    w = s.img.shape[1]
    b = s.boxes.copy()
    b[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    return Sample(np.ascontiguousarray(s.img[:, ::-1]), b, s.classes)


class Augmenter:
    """Builds one training sample. ``load(i)`` returns the i-th raw :class:`Sample` (original pixels);
    ``paste`` (copy-paste, flowdet.data.copy_paste.CopyPaste) runs with probability ``cfg.copy_paste``."""

    def __init__(self, cfg: AugmentConfig, load: Callable[[int], Sample], n: int,
                 paste: Callable[[Sample, np.random.Generator], Sample] | None = None):
        self.cfg, self.load, self.n, self.paste = cfg, load, n, paste

    def __call__(self, index: int, rng: np.random.Generator, out_hw: tuple[int, int], augment: bool) -> AugResult:
        cfg, (oh, ow) = self.cfg, out_hw
        if not augment:
            s = letterbox_sample(self.load(index), out_hw)
            return self._finish(s, out_hw)
        cut = 0
        if rng.random() < cfg.mosaic_prob:
            ids = [index] + [int(i) for i in rng.integers(0, self.n, 3)]
            s, cut = mosaic([self.load(i) for i in ids], out_hw, rng, cfg.min_visible)
        else:
            s = letterbox_sample(self.load(index), out_hw)
        s = random_affine(s, out_hw, rng, cfg)
        # Drop what the affine pushed out before mixup adds more boxes (counts stay per stage).
        b, c, tiny, out = filter_boxes(s.boxes, s.classes, ow, oh, cfg.min_box_size, cfg.min_visible)
        out += cut
        s = Sample(s.img, b, c)
        # After the geometry, in the boxes' frame (boxes stay exact); no draw when off (samples unchanged).
        if self.paste is not None and rng.random() < cfg.copy_paste:
            s = self.paste(s, rng)
        if rng.random() < cfg.mixup_prob:
            s = mixup(s, self.load(int(rng.integers(0, self.n))), rng, tuple(cfg.mixup_scale))
        if rng.random() < cfg.hsv_prob:
            s = Sample(augment_hsv(s.img, rng, tuple(cfg.hsv_gains)), s.boxes, s.classes)
        if rng.random() < cfg.flip_prob:
            s = hflip(s)
        r = self._finish(s, out_hw)
        return r._replace(dropped_tiny=r.dropped_tiny + tiny, dropped_out=r.dropped_out + out)

    def _finish(self, s: Sample, out_hw: tuple[int, int]) -> AugResult:
        oh, ow = out_hw
        b, c, tiny, out = filter_boxes(s.boxes, s.classes, ow, oh, self.cfg.min_box_size, self.cfg.min_visible)
        return AugResult(np.ascontiguousarray(s.img), b, c, tiny, out)


def photometric_strong(img: np.ndarray, rng: np.random.Generator, hsv_gains: tuple[float, float, float],
                       blur_prob: float, noise_std: float, cutout: int, cutout_area: float) -> np.ndarray:
    """The student's view of an unlabeled image: HSV shift, maybe Gaussian blur (sigma 0.1–2 px),
    maybe Gaussian noise (std up to ``noise_std``, 0–255 scale), 0 to ``cutout`` grey patches of at
    most ``cutout_area`` of the image each. No pixel moves, so the teacher's anchors (same geometry,
    no photometric change) and the student's look at the same place. Every draw is from ``rng``."""
    out = augment_hsv(img, rng, hsv_gains)
    do_blur, sigma = rng.random() < blur_prob, rng.uniform(0.1, 2.0)
    do_noise, std = rng.random() < 0.5, rng.uniform(0.0, noise_std)
    n = int(rng.integers(0, cutout + 1)) if cutout > 0 else 0
    patches = rng.uniform(size=(n, 4))  # area share, aspect, x, y
    if do_blur:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if do_noise and std > 0:
        noise = rng.standard_normal(out.shape, dtype=np.float32) * std
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    h, w = out.shape[:2]
    for a, asp, x, y in patches:
        area = (0.2 + 0.8 * a) * cutout_area * h * w
        ratio = 0.5 * 4 ** asp  # width / height in 0.5–2
        ph, pw = max(1, int(round((area / ratio) ** 0.5))), max(1, int(round((area * ratio) ** 0.5)))
        y0, x0 = int(y * max(h - ph, 0)), int(x * max(w - pw, 0))
        out[y0:y0 + ph, x0:x0 + pw] = PAD_VALUE
    return np.ascontiguousarray(out)
