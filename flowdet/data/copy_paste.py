"""Copy-paste of small objects (after Kisantal et al. 2019, "Augmentation for small object detection").

The training set's own small labeled objects, cut with a thin margin of the water around them, are
pasted onto training samples where they cover no labeled object, feathered over that margin, and
their boxes appended to the labels. Small objects are most of the labels here but each image holds
few of them, so few anchors ever learn from one; pasting adds positives without inventing pixels.

- **Scale-aware**: a crop is stored at the letterbox scale of the training input (the size the
  detector sees the object at in an un-augmented frame, i.e. the size val objects have) and pasted
  at that size times a small jitter, so the object-size distribution stays the real one.
- **Sources**: objects whose crop (box + margin) lies inside the frame, touches no other box and
  has a quiet margin (nothing unlabeled or no edge right next to the object, ``MAX_RING_STD``).
- **Placement**: of ``CANDIDATES`` random spots where the crop's rectangle (margin included) touches
  no box (labeled or pasted) and no padding, and whose surroundings are no busier than the source's
  (not across a shore, a mosaic seam or foam, ``STD_SLACK``), the one whose surroundings' mean colour
  is closest to the crop's own surroundings in its source frame (water next to water, not on the bank
  or the sky); none close enough → that crop is not pasted.
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

from flowdet.core.defaults import IGNORE_CLASS, PAD_VALUE
from flowdet.data.transforms import Sample

MARGIN = 2  # px of source water kept around a box (input scale); the feathered blend happens there
CANDIDATES = 16  # random spots tried per crop
MAX_COLOUR_DIST = 40.0  # BGR L2 between the mean colours around the spot and around the crop's source
# The spot's surroundings may be at most this much busier (std of grey levels at 1/DOWN resolution)
# than the source's: not across a shore, a mosaic seam or foam. Grogol-960 at 832x480: the sources'
# surroundings median 4.8 (90th percentile 13), random 20 px spots median 2.4 (90th 15).
STD_SLACK = 4.0
# A crop whose margin varies more than this (std of grey levels) has something unlabeled or an edge
# next to the object, which would be pasted along with it. Grogol-960: median 2.7; 15% of the objects are over.
MAX_RING_STD = 8.0
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
    context: np.ndarray  # [K, 4] float32: mean BGR and std of the crop's surroundings in its source frame
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


def _crop_rects(boxes: np.ndarray) -> np.ndarray:
    """[M, 4] the whole pixels a crop of each box covers: the pixels it touches plus MARGIN."""
    return np.concatenate([np.floor(boxes[:, :2]) - MARGIN, np.ceil(boxes[:, 2:]) + MARGIN], 1)


def _eligible(boxes: np.ndarray, h: float, w: float, max_side: float, min_side: float) -> np.ndarray:
    """[M] bool (boxes at input scale): small, its crop inside the frame and clear of the other boxes."""
    if boxes.shape[0] == 0:
        return np.zeros(0, bool)
    side = boxes[:, 2:] - boxes[:, :2]
    rect = _crop_rects(boxes)
    inside = (rect[:, 0] >= 0) & (rect[:, 1] >= 0) & (rect[:, 2] <= w) & (rect[:, 3] <= h)
    touching = _intersects(rect, boxes)
    np.fill_diagonal(touching, False)
    return (side.max(1) < max_side) & (side.min(1) >= min_side) & inside & ~touching.any(1)


def _input_scale(s: Sample, base_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(frame, boxes) resized by the letterbox ratio to ``base_hw`` (boxes follow the per-axis ratio)."""
    h, w = s.img.shape[:2]
    r = _ratio((h, w), base_hw)
    nh, nw = max(1, round(h * r)), max(1, round(w * r))
    if (nh, nw) == (h, w):
        return s.img, s.boxes
    img = cv2.resize(s.img, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    return img, (s.boxes * np.array([nw / w, nh / h] * 2, np.float32)).astype(np.float32)


def _ring_std(crop: np.ndarray, box: np.ndarray) -> float:
    """Grey-level std of the crop's margin (the pixels outside the box)."""
    ring = _alpha(crop.shape[0], crop.shape[1], box)[..., 0] < 1
    return float(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)[ring].astype(np.float32).std()) if ring.any() else 0.0


def build_bank(labels: Sequence[Labels], load: Callable[[int], Sample], base_hw: tuple[int, int],
               max_side: float, min_side: float, cap: int, seed: int) -> CropBank:
    """Up to ``cap`` crops of boxes under ``max_side`` px (longer side, input scale), at most
    ``PER_FRAME`` from each frame, frames taken in a seeded random order; the labels pick the frames, so
    only frames with such a box are loaded (decoded, or read from ``data.cache``), each once."""
    rng = np.random.default_rng([seed, BANK_SEED])
    items: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    src: list[tuple[int, int]] = []
    n_images = 0
    for i in rng.permutation(len(labels)):
        lb, lh, lw = labels[i]
        r = _ratio((lh, lw), base_hw)
        if len(items) >= cap:
            break
        if not _eligible(np.asarray(lb, np.float32).reshape(-1, 4) * r, lh * r, lw * r, max_side, min_side).any():
            continue
        s = load(int(i))
        cut = _cut_frame(s, base_hw, max_side, min_side, rng, min(PER_FRAME, cap - len(items)))
        items += cut
        src += [(s.img.shape[0], s.img.shape[1])] * len(cut)
        n_images += int(bool(cut))
    return CropBank([c for c, _, _, _ in items], np.array([b for _, b, _, _ in items], np.float32).reshape(-1, 4),
                    np.array([k for _, _, k, _ in items], np.int64),
                    np.array([x for _, _, _, x in items], np.float32).reshape(-1, 4),
                    np.array(src, np.int64).reshape(-1, 2), base_hw, n_images)


def _cut_frame(s: Sample, base_hw: tuple[int, int], max_side: float, min_side: float, rng: np.random.Generator,
               limit: int) -> list[tuple[np.ndarray, np.ndarray, int, np.ndarray]]:
    """Up to ``limit`` (crop, box inside it, class, [mean B, G, R, grey std] of its surroundings) of the
    eligible objects of one frame with a quiet margin, in a random order."""
    frame, boxes = _input_scale(s, base_hw)
    stats, (fh, fw) = _Surroundings(frame), frame.shape[:2]
    out: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    labels = s.classes != IGNORE_CLASS  # an ignore region is no object to paste (it still keeps crops clear)
    for k in rng.permutation(np.flatnonzero(_eligible(boxes, fh, fw, max_side, min_side) & labels)):
        if len(out) >= limit:
            break
        x0, y0, x1, y1 = _crop_rects(boxes[k:k + 1])[0].astype(int)
        crop, inner = frame[y0:y1, x0:x1], (boxes[k] - np.array([x0, y0, x0, y0], np.float32)).astype(np.float32)
        if _ring_std(crop, inner) > MAX_RING_STD:
            continue
        colour, std, _ = stats.around(np.array([[x0, y0, x1, y1]], np.float32))
        out.append((np.ascontiguousarray(crop), inner, int(s.classes[k]), np.append(colour[0], std[0]).astype(np.float32)))
    return out


class _Surroundings:
    """Mean colour, grey-level std and padding share around any rectangle in O(1), from integral
    images at 1/DOWN resolution."""

    def __init__(self, img: np.ndarray):
        h, w = img.shape[:2]
        self.sw, self.sh = max(1, w // DOWN), max(1, h // DOWN)
        small = cv2.resize(img, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
        self.colour = cv2.integral(small)  # [sh+1, sw+1, 3] int32
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        self.grey_sq = cv2.integral2(grey, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        pad = cv2.inRange(small, (PAD_VALUE,) * 3, (PAD_VALUE,) * 3) // 255  # padding stays 114 when averaged
        self.pad = cv2.integral(pad)
        self.fx, self.fy = self.sw / w, self.sh / h

    def _totals(self, rects: np.ndarray) -> tuple[np.ndarray, ...]:
        """(cells, BGR sums [K, 3], grey sum, grey square sum, padding cells) over rects [K, 4] xyxy in
        image px, clipped to the image."""
        x0 = np.clip(np.floor(rects[:, 0] * self.fx), 0, self.sw - 1).astype(np.int64)
        y0 = np.clip(np.floor(rects[:, 1] * self.fy), 0, self.sh - 1).astype(np.int64)
        x1 = np.clip(np.ceil(rects[:, 2] * self.fx), x0 + 1, self.sw).astype(np.int64)
        y1 = np.clip(np.ceil(rects[:, 3] * self.fy), y0 + 1, self.sh).astype(np.int64)

        def total(s: np.ndarray) -> np.ndarray:
            return (s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0]).astype(np.float64)

        n = ((x1 - x0) * (y1 - y0)).astype(np.float64)
        return n, total(self.colour), total(self.grey_sq[0]), total(self.grey_sq[1]), total(self.pad)

    def around(self, rects: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What surrounds each rect [K, 4]: the rect grown by its own size on every side, less the rect
        itself (the object at a source, what the paste replaces at a spot) → (mean BGR [K, 3], grey
        std [K]), and the padding share of the whole grown rect [K]."""
        w, h = rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1]
        outer = self._totals(rects + np.stack([-w, -h, w, h], 1))
        n_in, colour, grey, sq, _ = (a - b for a, b in zip(outer, self._totals(rects)))
        n = np.maximum(n_in, 1.0)
        mean_grey = grey / n
        std = np.sqrt(np.maximum(sq / n - mean_grey * mean_grey, 0.0))
        return colour / n[:, None], std, outer[4] / outer[0]


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
    img, stats = s.img.copy(), _Surroundings(s.img)  # a copy: s.img may be a cached frame
    taken, boxes, classes = [s.boxes.astype(np.float32).reshape(-1, 4)], [], []
    for k, f, xy in zip(picks.tolist(), scales.tolist(), spots):
        src = bank.src_hw[k]
        crop, box = _scaled(bank, k, f * _ratio(src, (h, w)) / _ratio(src, bank.base_hw))  # multi-scale
        ph, pw = crop.shape[:2]
        if ph > h or pw > w or float((box[2:] - box[:2]).min()) < min_side:
            continue
        x, y = np.floor(xy[:, 0] * (w - pw + 1)), np.floor(xy[:, 1] * (h - ph + 1))
        rects = np.stack([x, y, x + pw, y + ph], 1).astype(np.float32)
        colour, std, pad = stats.around(rects)
        dist = np.linalg.norm(colour - bank.context[k, :3], axis=1)
        ok = ~_intersects(rects, np.concatenate(taken)).any(1) & (pad <= MAX_PAD_SHARE) & (dist <= MAX_COLOUR_DIST)
        ok &= std <= bank.context[k, 3] + STD_SLACK
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
