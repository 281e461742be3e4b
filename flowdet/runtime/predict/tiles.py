"""Sliced inference for tiny objects: overlapping tiles plus the full frame, merged.

At 640 px input a 1920×1080 frame is shrunk 3×, so a 12 px bottle becomes 4 px — below what the
stride-8 head resolves. Tiles of ``tile`` px (native resolution when ``tile`` equals the model
input) keep small objects at full size; the full frame keeps the large ones. Works for any
:class:`flowdet.runtime.predict.predictor.Predictor`: the crops of every image go to ``predict`` in calls of
at most :data:`CROPS_PER_CALL`, and the backend batches them (OnnxPredictor with a dynamic batch
axis runs chunks, a fixed-batch model loops). A frame may make at most :data:`MAX_TILES` tiles:
every backend letterboxes each crop to its input size, so ``--tile 32 --overlap 0.95`` (11,745 tiles
on a 320×192 frame) took 3 GB in 6 s and then the machine. Torch-free.
"""
from __future__ import annotations

import numpy as np

from flowdet.core.boxes import box_iou
from flowdet.core.detections import Detections
from flowdet.core.nms import batched_nms
from flowdet.errors import InputError

MAX_TILES = 256  # tiles per frame (4K at --tile 320 --overlap 0.3 needs 170, 8K at 640 / 0.2: 135)
CROPS_PER_CALL = 64  # crops per predict call: each is letterboxed to the model input (~5 MB at 640)


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]  # the last tile is flush with the edge, never padded


def tile_windows(height: int, width: int, tile: int | tuple[int, int],
                 overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) of at most ``tile`` px (a side, or (H, W) for a rectangular model
    input) covering the image with ≥ ``overlap``."""
    th, tw = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    if min(th, tw) < 32:
        raise ValueError(f"tile must be >= 32 px, got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    return [(x, y, min(x + tw, width), min(y + th, height))
            for y in _starts(height, th, overlap) for x in _starts(width, tw, overlap)]


def _edge_mask(boxes: np.ndarray, win: tuple[int, int, int, int], size: tuple[int, int], margin: float) -> np.ndarray:
    """True for boxes touching a tile edge that is inside the image: likely a cut-off object that a
    neighbouring tile (overlap) or the full frame sees whole."""
    x0, y0, x1, y1 = win
    h, w = size
    cut = np.zeros(len(boxes), bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= x0 + margin
    if y0 > 0:
        cut |= boxes[:, 1] <= y0 + margin
    if x1 < w:
        cut |= boxes[:, 2] >= x1 - margin
    if y1 < h:
        cut |= boxes[:, 3] >= y1 - margin
    return cut


def weighted_box_fusion(det: Detections, iou: float) -> Detections:
    """Cluster same-class boxes (IoU > ``iou`` with the cluster's fused box) and average their
    coordinates weighted by score. The fused score is the cluster's max, not WBF's mean × n/N:
    here an object is seen by only 1–4 of the views, and that must not lower its score."""
    if len(det) == 0:
        return det
    order = np.argsort(-det.scores, kind="stable")
    # Fused boxes live in one preallocated array (rows [:n]): a tiled frame can hold thousands of
    # boxes, and restacking a list of fused boxes for every box made this loop quadratic in Python.
    fused_b = np.empty((len(det), 4), np.float64)
    fused_c = np.empty(len(det), np.int64)
    members: list[list[int]] = []
    for i in order:
        n = len(members)
        cand = np.flatnonzero(fused_c[:n] == det.class_ids[i])
        if cand.size:
            ious = box_iou(det.boxes[i:i + 1], fused_b[cand])[0]
            j = int(np.argmax(ious))
            if ious[j] > iou:
                k = int(cand[j])
                members[k].append(i)
                w = det.scores[members[k]].astype(np.float64)
                fused_b[k] = (det.boxes[members[k]] * w[:, None]).sum(0) / w.sum()
                continue
        fused_b[n] = det.boxes[i]
        fused_c[n] = det.class_ids[i]
        members.append([i])
    n = len(members)
    return Detections(fused_b[:n].astype(np.float32),
                      np.asarray([det.scores[m].max() for m in members], np.float32),
                      fused_c[:n].copy())


def merge(parts: list[Detections], iou: float = 0.5, method: str = "nms", max_det: int = 1000) -> Detections:
    """Concatenate per-view detections (already in image pixels) and merge duplicates."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections()
    det = Detections(np.concatenate([p.boxes for p in parts]).astype(np.float32),
                     np.concatenate([p.scores for p in parts]).astype(np.float32),
                     np.concatenate([p.class_ids for p in parts]).astype(np.int64))
    if method == "wbf":
        det = weighted_box_fusion(det, iou)
        keep = np.argsort(-det.scores, kind="stable")[:max_det]
    elif method == "nms":
        keep = batched_nms(det.boxes, det.scores, det.class_ids, iou)[:max_det]
    else:
        raise ValueError(f"merge method must be 'nms' or 'wbf', got {method!r}")
    return det[keep]


class TiledPredictor:
    """Wraps any Predictor: ``predict`` runs tiles (+ the full frame) and merges.

    ``tile``: tile side in original pixels (e.g. the model input size for native resolution);
    ``overlap``: fraction shared by neighbouring tiles (≥ the largest tiny object / tile);
    ``full_frame``: also run the whole frame (large objects); ``merge``: "nms" or "wbf";
    ``merge_iou``: IoU for merging views (None = the ``iou`` passed to ``predict``);
    ``edge_margin``: px; with ``full_frame`` on, tile detections touching an interior tile edge are
    dropped (a cut-off object, seen whole by a neighbour or the full frame).
    """

    def __init__(self, base, tile: int | tuple[int, int], overlap: float = 0.2, full_frame: bool = True, merge: str = "nms",
                 merge_iou: float | None = None, edge_margin: float = 2.0):
        th, tw = (tile, tile) if isinstance(tile, int) else tile
        tile_windows(th, tw, tile, overlap)  # validates tile / overlap early
        if merge not in ("nms", "wbf"):
            raise ValueError(f"merge method must be 'nms' or 'wbf', got {merge!r}")
        self.base, self.overlap = base, float(overlap)
        self.tile = int(tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
        self.full_frame, self.merge, self.merge_iou, self.edge_margin = full_frame, merge, merge_iou, edge_margin
        self.names, self.img_size = base.names, base.img_size
        # results must carry the model's COCO category ids, not class indices (else AP is 0)
        self.cat_ids = getattr(base, "cat_ids", None)
        self.last_views = 0  # crops run for the last call (for throughput reporting)

    def windows(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        wins = tile_windows(height, width, self.tile, self.overlap)
        if len(wins) > MAX_TILES:
            tile = self.tile if isinstance(self.tile, int) else "x".join(map(str, self.tile[::-1]))
            raise InputError(f"--tile {tile} with --overlap {self.overlap:g} makes {len(wins)} tiles of a {width}x{height} "
                             f"frame, over the limit of {MAX_TILES} per frame: use a larger --tile or a smaller --overlap",
                             field="--tile")
        if self.full_frame and wins == [(0, 0, width, height)]:
            return []  # the single tile is the full frame already
        return wins

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65,
                max_det: int = 1000) -> list[Detections]:
        crops: list[np.ndarray] = []
        plan: list[list[tuple[int, tuple[int, int, int, int] | None]]] = []
        for im in images:
            h, w = im.shape[:2]
            views: list[tuple[int, tuple[int, int, int, int] | None]] = []
            if self.full_frame:
                views.append((len(crops), None))
                crops.append(im)
            for win in self.windows(h, w):
                views.append((len(crops), win))
                crops.append(im[win[1]:win[3], win[0]:win[2]])
            plan.append(views)
        self.last_views = len(crops)
        dets: list[Detections] = []
        for i in range(0, len(crops), CROPS_PER_CALL):  # memory bounded whatever the tile count
            dets += self.base.predict(crops[i:i + CROPS_PER_CALL], conf=conf, iou=iou)
        out = []
        for im, views in zip(images, plan):
            parts = []
            for idx, win in views:
                d = dets[idx]
                if win is not None and len(d):
                    boxes = d.boxes + np.array([win[0], win[1], win[0], win[1]], np.float32)
                    keep = ~_edge_mask(boxes, win, im.shape[:2], self.edge_margin) if self.full_frame else slice(None)
                    d = Detections(boxes[keep], d.scores[keep], d.class_ids[keep])
                parts.append(d)
            merged = merge(parts, self.merge_iou if self.merge_iou is not None else iou, self.merge, max_det)
            merged.invalid = sum(dets[idx].invalid for idx, _ in views)  # what each view dropped, counted once
            out.append(merged)
        return out
