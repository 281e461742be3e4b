"""Copy-paste of small objects (after Kisantal et al. 2019, "Augmentation for small object detection").

The training set's own small labeled objects, cut with a thin margin of the water around them, are
pasted onto training samples where they cover no labeled object, feathered over that margin, and
their boxes appended to the labels. Small objects are most of the labels here but each image holds
few of them, so few anchors ever learn from one; pasting adds positives without inventing pixels.

- **Scale-aware**: a crop is stored at the letterbox scale of the training input (the size the
  detector sees the object at in an un-augmented frame, i.e. the size val objects have) and pasted
  at that size times a small jitter, so the object-size distribution stays the real one.
- **Placement**: of ``CANDIDATES`` random spots where the crop's rectangle (margin included) touches
  no box (labeled or pasted) and no padding, the one whose surroundings' mean colour is closest to
  the crop's own surroundings in its source frame (water next to water, not on the bank or the sky);
  none close enough → that crop is not pasted.
- **Exact boxes, no seams**: runs after the geometry (mosaic/letterbox + affine), in the frame of the
  boxes, at integer offsets. Alpha is 1 over the box and falls to the crop's edge over the margin; the
  crop is first shifted by one whole number per channel so that its margin has the mean colour of
  the water it lands on. Inside the box the pixels are the crop's plus that shift, exactly.

Torch-free numpy/cv2; every draw comes from the sample's Generator (see flowdet.data.transforms).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from flowdet.core.defaults import PAD_VALUE
from flowdet.data.transforms import Sample

MARGIN = 2  # px of source water kept around a box (input scale); the feathered blend happens there
CANDIDATES = 16  # random spots tried per crop
MAX_COLOUR_DIST = 40.0  # BGR L2 between the mean colours around the spot and around the crop's source
MAX_PAD_SHARE = 0.1  # share of padding (value 114) the spot's surroundings may hold (image edges)
DOWN = 4  # placement statistics are taken on the image at 1/DOWN resolution (integral images)
PER_FRAME = 8  # most crops taken from one frame: the bank spans more scenes, light and water
BANK_SEED = 0xC0B7  # the bank's own stream: the same crops for any epoch, worker or resume

Labels = tuple[np.ndarray, int, int]  # (boxes [M, 4] xyxy in source px, source height, width)


@dataclass
class CropBank:
    """Small objects cut from the training frames at the base input's letterbox scale."""

    crops: list[np.ndarray]  # [h, w, 3] uint8, the box plus MARGIN px on each side
    boxes: np.ndarray  # [K, 4] float32 xyxy inside its crop
    classes: np.ndarray  # [K] int64
    context: np.ndarray  # [K, 3] float32: mean BGR of the crop's surroundings in its source frame
    src_hw: np.ndarray  # [K, 2] source frame (H, W): multi-scale rescales by the letterbox ratio
    base_hw: tuple[int, int]
    n_images: int = 0  # frames the crops came from

    def __len__(self) -> int:
        return len(self.crops)


def _ratio(src_hw: Sequence[int], out_hw: Sequence[int]) -> float:
    return min(out_hw[0] / src_hw[0], out_hw[1] / src_hw[1])


def _intersects(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A, B] bool: rectangles of ``a`` and ``b`` (xyxy) share a positive area."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), bool)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (iw > 0) & (ih > 0)


def _eligible(boxes: np.ndarray, h: int, w: int, r: float, max_side: float, min_side: float) -> np.ndarray:
    """[M] bool: small at input scale, its margin inside the frame and clear of the other boxes."""
    if boxes.shape[0] == 0:
        return np.zeros(0, bool)
    side = (boxes[:, 2:] - boxes[:, :2]) * r
    m = MARGIN / r
    rect = boxes + np.array([-m, -m, m, m], np.float32)
    inside = (rect[:, 0] >= 0) & (rect[:, 1] >= 0) & (rect[:, 2] <= w) & (rect[:, 3] <= h)
    touching = _intersects(rect, boxes)
    np.fill_diagonal(touching, False)
    return (side.max(1) < max_side) & (side.min(1) >= min_side) & inside & ~touching.any(1)


def _cut(img: np.ndarray, box: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop at input scale, box inside it, mean BGR of the crop's surroundings: 3× its size)."""
    h, w = img.shape[:2]
    m = MARGIN / r
    x0, y0 = max(0, math.floor(box[0] - m)), max(0, math.floor(box[1] - m))
    x1, y1 = min(w, math.ceil(box[2] + m)), min(h, math.ceil(box[3] + m))
    cw, ch = x1 - x0, y1 - y0
    ctx = img[max(0, y0 - ch):y1 + ch, max(0, x0 - cw):x1 + cw].reshape(-1, 3).mean(0)
    crop, inner = img[y0:y1, x0:x1], (box - np.array([x0, y0, x0, y0], np.float32))
    nw, nh = max(1, round(cw * r)), max(1, round(ch * r))
    if (nw, nh) != (cw, ch):
        crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        inner = inner * np.array([nw / cw, nh / ch] * 2, np.float32)
    return np.ascontiguousarray(crop), inner.astype(np.float32), ctx.astype(np.float32)


def build_bank(labels: Sequence[Labels], load: Callable[[int], Sample], base_hw: tuple[int, int],
               max_side: float, min_side: float, cap: int, seed: int) -> CropBank:
    """Up to ``cap`` crops of boxes under ``max_side`` px (longer side, input scale), at most
    ``PER_FRAME`` from each frame, frames taken in a seeded random order; the labels pick the frames, so
    only frames with such a box are loaded (decoded, or read from ``data.cache``), each once."""
    rng = np.random.default_rng([seed, BANK_SEED])
    crops: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    ctx: list[np.ndarray] = []
    classes: list[int] = []
    src: list[tuple[int, int]] = []
    n_images = 0
    for i in rng.permutation(len(labels)):
        lb, lh, lw = labels[i]
        if len(crops) >= cap:
            break
        if not _eligible(np.asarray(lb, np.float32).reshape(-1, 4), lh, lw, _ratio((lh, lw), base_hw),
                         max_side, min_side).any():
            continue
        s = load(int(i))
        h, w = s.img.shape[:2]
        r = _ratio((h, w), base_hw)
        keep = rng.permutation(np.flatnonzero(_eligible(s.boxes, h, w, r, max_side, min_side)))
        keep = np.sort(keep[:min(PER_FRAME, cap - len(crops))])
        n_images += int(keep.size > 0)
        for k in keep:
            crop, inner, c = _cut(s.img, s.boxes[k], r)
            crops.append(crop)
            boxes.append(inner)
            classes.append(int(s.classes[k]))
            ctx.append(c)
            src.append((h, w))
    return CropBank(crops, np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
                    np.array(ctx, np.float32).reshape(-1, 3), np.array(src, np.int64).reshape(-1, 2), base_hw,
                    n_images)


class _Surroundings:
    """Mean colour and padding share of any rectangle in O(1), from integral images at 1/DOWN resolution."""

    def __init__(self, img: np.ndarray):
        h, w = img.shape[:2]
        self.sw, self.sh = max(1, w // DOWN), max(1, h // DOWN)
        small = cv2.resize(img, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
        self.colour = cv2.integral(small)  # [sh+1, sw+1, 3] int32
        pad = cv2.inRange(small, (PAD_VALUE,) * 3, (PAD_VALUE,) * 3) // 255  # padding stays 114 when averaged
        self.pad = cv2.integral(pad)
        self.fx, self.fy = self.sw / w, self.sh / h

    def at(self, rects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rects [K, 4] xyxy in image px (may reach outside) → (mean BGR [K, 3], padding share [K])."""
        x0 = np.clip(np.floor(rects[:, 0] * self.fx), 0, self.sw - 1).astype(np.int64)
        y0 = np.clip(np.floor(rects[:, 1] * self.fy), 0, self.sh - 1).astype(np.int64)
        x1 = np.clip(np.ceil(rects[:, 2] * self.fx), x0 + 1, self.sw).astype(np.int64)
        y1 = np.clip(np.ceil(rects[:, 3] * self.fy), y0 + 1, self.sh).astype(np.int64)
        n = ((x1 - x0) * (y1 - y0)).astype(np.float64)

        def total(s: np.ndarray) -> np.ndarray:
            return (s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0]).astype(np.float64)

        return total(self.colour) / n[:, None], total(self.pad) / n


def _alpha(ph: int, pw: int, box: np.ndarray) -> np.ndarray:
    """[ph, pw, 1] float32: 1 on every pixel the box touches, falling linearly over the margin, so the
    object is the crop's own pixels and no hard seam is left at the crop's edge."""
    ix0, iy0, ix1, iy1 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    cols, rows = np.arange(pw), np.arange(ph)
    dx = np.maximum(np.maximum(ix0 - cols, cols - (ix1 - 1)), 0)
    dy = np.maximum(np.maximum(iy0 - rows, rows - (iy1 - 1)), 0)
    d = np.maximum(dy[:, None], dx[None, :])
    return (1.0 - d / (d.max() + 1.0)).astype(np.float32)[..., None]


def _blend(crop: np.ndarray, region: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The crop over ``region`` with alpha ``a``, shifted first by a whole number per channel so its margin
    has the region's mean colour: loose labels hold water, and another water's tone would leave a
    patch the size of the box around every pasted object (a cue the detector could learn)."""
    obj, under = crop.astype(np.float32), region.astype(np.float32)
    ring = a[..., 0] < 1
    if ring.any():
        obj = np.clip(obj + np.round(under[ring].mean(0) - obj[ring].mean(0)), 0, 255)
    return (obj * a + under * (1.0 - a) + 0.5).astype(np.uint8)


def _scaled(bank: CropBank, k: int, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``k`` and its box resized by ``f`` (the box follows the per-axis ratio actually applied)."""
    crop, box = bank.crops[k], bank.boxes[k]
    ch, cw = crop.shape[:2]
    nw, nh = max(1, round(cw * f)), max(1, round(ch * f))
    if (nw, nh) == (cw, ch):
        return crop, box
    crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    return crop, (box * np.array([nw / cw, nh / ch] * 2, np.float32)).astype(np.float32)


def paste_objects(s: Sample, bank: CropBank, rng: np.random.Generator, max_n: int, jitter: float,
                  min_side: float) -> tuple[Sample, int]:
    """Paste 1..``max_n`` crops of ``bank`` onto ``s`` (see the module docstring). Returns the sample,
    with the pasted boxes appended, and how many were pasted (a crop with no fitting spot is skipped)."""
    h, w = s.img.shape[:2]
    n = int(rng.integers(1, max_n + 1))
    picks = rng.integers(0, len(bank), n)
    scales = rng.uniform(1.0 - jitter, 1.0 + jitter, n)
    spots = rng.random((n, CANDIDATES, 2))  # all draws up front: the stream does not depend on the image
    img, around = s.img.copy(), _Surroundings(s.img)  # a copy: s.img may be a cached frame
    taken, boxes, classes = [s.boxes.astype(np.float32).reshape(-1, 4)], [], []
    for k, f, xy in zip(picks.tolist(), scales.tolist(), spots):
        src = bank.src_hw[k]
        crop, box = _scaled(bank, k, f * _ratio(src, (h, w)) / _ratio(src, bank.base_hw))  # multi-scale
        ph, pw = crop.shape[:2]
        if ph > h or pw > w or float((box[2:] - box[:2]).min()) < min_side:
            continue
        x, y = np.floor(xy[:, 0] * (w - pw + 1)), np.floor(xy[:, 1] * (h - ph + 1))
        rects = np.stack([x, y, x + pw, y + ph], 1).astype(np.float32)
        colour, pad = around.at(rects + np.array([-pw, -ph, pw, ph], np.float32))
        dist = np.linalg.norm(colour - bank.context[k], axis=1)
        ok = ~_intersects(rects, np.concatenate(taken)).any(1) & (pad <= MAX_PAD_SHARE) & (dist <= MAX_COLOUR_DIST)
        if not ok.any():
            continue
        j = int(np.argmin(np.where(ok, dist, np.inf)))
        x0, y0 = int(rects[j, 0]), int(rects[j, 1])
        img[y0:y0 + ph, x0:x0 + pw] = _blend(crop, img[y0:y0 + ph, x0:x0 + pw], _alpha(ph, pw, box))
        boxes.append(box + np.array([x0, y0, x0, y0], np.float32))
        classes.append(bank.classes[k])
        taken.append(rects[j:j + 1])
    if not boxes:
        return s, 0
    return Sample(img, np.concatenate([s.boxes, np.stack(boxes)]).astype(np.float32),
                  np.concatenate([s.classes, np.array(classes, np.int64)]).astype(np.int64)), len(boxes)


class CopyPaste:
    """The augmentation step :class:`flowdet.data.transforms.Augmenter` calls: a bank and its parameters."""

    def __init__(self, bank: CropBank, max_n: int, jitter: float, min_side: float):
        self.bank, self.max_n, self.jitter, self.min_side = bank, max_n, jitter, min_side

    def __call__(self, s: Sample, rng: np.random.Generator) -> Sample:
        return paste_objects(s, self.bank, rng, self.max_n, self.jitter, self.min_side)[0]
