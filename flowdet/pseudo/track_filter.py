"""The track filter: a teacher's detections over one source's frames → pseudo-labels.

A detection that a track carries over several frames is far more likely real than one seen once, and
a track's gap frames hold an object the teacher missed there. Offline, the whole sequence is known, so:

1. flowdet's own tracker (:class:`flowdet.runtime.track.tracker.ByteTracker`, the stream's settings, with its
   high threshold at ``conf``) runs over every detection ≥ ``low``, frame gaps as ``dt``;
2. **track**: every detection a track that is ever confirmed was matched to, its tentative frames
   included (online they are not reported yet; offline they are the same object), score kept; its box
   averaged (centre and size) with the track's boxes up to ``smooth`` frames before and after — in
   symmetric pairs only, so a steady drift is not biased (tiny boxes are noisy; the object is not);
3. **gap**: where a confirmed track went unmatched for at most ``max_gap`` source frames between two
   matches, the box is interpolated linearly in each processed frame of the gap (score: the lower of
   the two ends), unless a kept box already covers it (IoU ≥ ``dup_iou``);
4. **ignore**: every other detection ≥ ``ignore_above`` that no kept or filled box covers becomes an
   ignore region (COCO ``iscrowd: 1``) — a plausible object the tracks do not confirm, neither a
   target nor background. The rest (below ``ignore_above``, or duplicates of a kept box) is dropped.

Frames without a time order get :func:`untracked`: detections ≥ ``conf`` kept, ``[ignore_above, conf)``
ignore regions. numpy + flowdet.runtime; torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowdet.core.boxes import box_iou
from flowdet.core.detections import Detections
from flowdet.errors import InputError
from flowdet.runtime.track.track import TrackerConfig
from flowdet.runtime.track.tracker import ByteTracker

TRACK, GAP, DETECTION = "track", "gap", "detection"   # a pseudo-box's origin (the json's "source")


@dataclass
class FilterConfig:
    """Thresholds of the filter (the CLI's flags; defaults justified in docs/architecture.md)."""

    conf: float = 0.5           # trusted: the "before" threshold, what an unordered folder keeps, the tracker's high
    low: float = 0.1            # floor of what the tracker sees (ByteTrack's second stage carries low scores)
    ignore_above: float = 0.25  # an unconfirmed detection at or above it is an ignore region
    max_gap: int = 5            # source frames a confirmed track may go unmatched and still get boxes
    smooth: int = 1             # a track box is averaged with its neighbours up to this many frames away (0: raw)
    dup_iou: float = 0.5        # IoU at which two boxes are one object

    def validate(self) -> None:
        if not 0 <= self.low <= self.ignore_above <= 1 or not 0 <= self.low <= self.conf <= 1:
            raise InputError(f"thresholds need 0 <= --low ({self.low}) <= --ignore-above ({self.ignore_above}) "
                             f"<= 1 and --low <= --conf ({self.conf}) <= 1")
        if self.max_gap < 0:
            raise InputError(f"--max-gap must be >= 0, got {self.max_gap}", field="--max-gap")
        if self.smooth < 0:
            raise InputError(f"--smooth must be >= 0, got {self.smooth}", field="--smooth")

    def tracker(self) -> TrackerConfig:
        """flowdet's tracker defaults with its thresholds moved to ``conf``/``low``: it extends tracks with
        detections ≥ conf (stage 1), carries them on ≥ low (stage 2), starts them at conf + 0.1 (its
        default 0.5 / 0.6 gap)."""
        return TrackerConfig(high_thresh=self.conf, low_thresh=self.low, new_track_thresh=min(1.0, self.conf + 0.1))


@dataclass
class PseudoBoxes:
    """One frame's pseudo-labels: xyxy boxes, scores, class indices, track ids (0: none), origins
    (TRACK / GAP / DETECTION) and ``ignore`` (an ignore region, written ``iscrowd: 1``)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray
    origin: np.ndarray
    ignore: np.ndarray

    @classmethod
    def concat(cls, parts: list[tuple]) -> PseudoBoxes:
        """From (boxes, scores, class_ids, track_ids, origin, ignore) tuples of arrays."""
        cols = list(zip(*parts)) if parts else [[]] * 6
        dtypes = (np.float32, np.float32, np.int64, np.int64, object, bool)
        arrs = [np.concatenate([np.asarray(a, dt) for a in c]) if c else np.zeros(0, dt) for c, dt in zip(cols, dtypes)]
        arrs[0] = arrs[0].reshape(-1, 4)
        return cls(*arrs)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def kept(self) -> np.ndarray:
        """Mask of the training boxes (not ignore regions)."""
        return ~self.ignore


def _row_of(boxes64: np.ndarray, box: np.ndarray) -> int:
    """Index of the detection a track was matched to this frame: the tracker keeps that row's values."""
    rows = np.nonzero((boxes64 == np.asarray(box, np.float64)).all(1))[0]
    return int(rows[0]) if len(rows) else -1


def _covered(boxes: np.ndarray, by: np.ndarray, iou: float) -> np.ndarray:
    if not len(by) or not len(boxes):
        return np.zeros(len(boxes), bool)
    return (box_iou(np.asarray(boxes, np.float32), np.asarray(by, np.float32)) >= iou).any(1)


def _ignored(det: Detections, taken: np.ndarray, cover: np.ndarray, cfg: FilterConfig, below: float = 1.01) -> tuple:
    """Ignore regions among the detections not ``taken``: ``ignore_above`` <= score < ``below``, not covered
    by ``cover`` boxes."""
    m = ~taken & (det.scores >= cfg.ignore_above) & (det.scores < below)
    m &= ~_covered(det.boxes, cover, cfg.dup_iou)
    k = int(m.sum())
    return (det.boxes[m], det.scores[m], det.class_ids[m], np.zeros(k), np.full(k, DETECTION, object), np.ones(k, bool))


def untracked(det: Detections, cfg: FilterConfig) -> PseudoBoxes:
    """A frame without a time order: detections ≥ ``conf`` kept, ``[ignore_above, conf)`` ignore regions."""
    keep = det.scores >= cfg.conf
    k = int(keep.sum())
    kept = (det.boxes[keep], det.scores[keep], det.class_ids[keep], np.zeros(k), np.full(k, DETECTION, object),
            np.zeros(k, bool))
    return PseudoBoxes.concat([kept, _ignored(det, keep, det.boxes[keep], cfg, below=cfg.conf)])


def smooth_track(boxes: np.ndarray, positions: list[int], radius: int) -> np.ndarray:
    """xyxy boxes of one track at frame ``positions`` → each the mean (centre, width, height) of itself and
    the pairs of boxes ``d`` frames before and after it, d = 1 … ``radius``, while both of a pair exist."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if radius <= 0 or len(b) < 3:
        return b
    c = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1)
    at = {p: i for i, p in enumerate(positions)}
    out = c.copy()
    for i, p in enumerate(positions):
        rows = [i]
        for d in range(1, radius + 1):
            if p - d not in at or p + d not in at:
                break
            rows += [at[p - d], at[p + d]]
        out[i] = c[rows].mean(0)
    return np.concatenate([out[:, :2] - out[:, 2:] / 2, out[:, :2] + out[:, 2:] / 2], 1)


def track_filter(frames: list[tuple[int, Detections, tuple[int, int]]], cfg: FilterConfig) -> tuple[list[PseudoBoxes], int]:
    """``frames``: one ordered source's (frame number, detections ≥ ``cfg.low``, (width, height)) in order
    → (pseudo-labels per frame, confirmed tracks)."""
    tracker = ByteTracker(cfg.tracker())
    hits: dict[int, list[tuple[int, int]]] = {}   # track uid → (frame position, detection row), in order
    tracks: dict[int, object] = {}
    prev = None
    for k, (index, det, size) in enumerate(frames):
        dt = index - prev if prev is not None and index > prev else 1
        prev = index
        boxes64 = np.asarray(det.boxes, np.float64).reshape(-1, 4)
        tracker.update(det, dt=dt, frame_size=size)
        for t in tracker.tracks:
            if t.updated:
                hits.setdefault(t.uid, []).append((k, _row_of(boxes64, t.box)))
                tracks[t.uid] = t
    confirmed = {uid: t.id for uid, t in tracks.items() if t.id > 0}

    taken = [np.zeros(len(d), bool) for _, d, _ in frames]
    track_of = [np.zeros(len(d), np.int64) for _, d, _ in frames]
    kept_box = [np.asarray(d.boxes, np.float64).reshape(-1, 4).copy() for _, d, _ in frames]  # smoothed where tracked
    fills: list[list[tuple]] = [[] for _ in frames]
    for uid, tid in confirmed.items():
        h = [(k, d) for k, d in hits[uid] if d >= 0]
        smoothed = smooth_track(np.array([kept_box[k][d] for k, d in h]), [k for k, _ in h], cfg.smooth)
        for (k, d), b in zip(h, smoothed):
            taken[k][d], track_of[k][d] = True, tid
            kept_box[k][d] = b
        for (k1, d1), (k2, d2) in zip(h, h[1:]):
            i1, i2 = frames[k1][0], frames[k2][0]
            if k2 - k1 < 2 or i2 - i1 - 1 > cfg.max_gap:
                continue
            det1, det2 = frames[k1][1], frames[k2][1]
            b1, b2 = kept_box[k1][d1], kept_box[k2][d2]
            score = float(min(det1.scores[d1], det2.scores[d2]))
            cls = int(det1.class_ids[d1] if det1.scores[d1] >= det2.scores[d2] else det2.class_ids[d2])
            for k in range(k1 + 1, k2):
                a = (frames[k][0] - i1) / (i2 - i1)
                fills[k].append(((1 - a) * b1 + a * b2, score, cls, tid))

    out = []
    for k, (_, det, _) in enumerate(frames):
        m = taken[k]
        kept_boxes = kept_box[k][m].astype(np.float32)
        parts = [(kept_boxes, det.scores[m], det.class_ids[m], track_of[k][m], np.full(int(m.sum()), TRACK, object),
                  np.zeros(int(m.sum()), bool))]
        if fills[k]:
            fb = np.array([f[0] for f in fills[k]], np.float32).reshape(-1, 4)
            new = ~_covered(fb, kept_boxes, cfg.dup_iou)
            n = int(new.sum())
            parts.append((fb[new], np.array([f[1] for f in fills[k]])[new], np.array([f[2] for f in fills[k]])[new],
                          np.array([f[3] for f in fills[k]])[new], np.full(n, GAP, object), np.zeros(n, bool)))
            kept_boxes = np.concatenate([kept_boxes, fb[new]])
        parts.append(_ignored(det, m, kept_boxes, cfg))
        out.append(PseudoBoxes.concat(parts))
    return out, len(confirmed)
