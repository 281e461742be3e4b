"""ByteTrack-style multi-object tracker in original-frame pixels (numpy; torch-free).

Per frame (``ByteTracker.update``):

1. Every track's constant-velocity Kalman filter predicts its box (across skipped frames, ``dt > 1``,
   with its size held: a small object's size rate is mostly noise and rotation).
2. High-score detections (``score >= high_thresh``) are matched to confirmed and lost tracks.
3. Low-score detections (``low_thresh <= score < high_thresh``) are matched to the confirmed
   tracks still unmatched (ByteTrack's second stage: an occluded / dipping object keeps its id).
4. Tentative tracks are matched to the high-score detections left.
   Across skipped frames (``dt > 1``) the confirmed and lost tracks still unmatched then get a second
   chance at the detections that would start tracks: within ``recover_radius`` × √(source frames since
   last matched) × their longer side of their predicted or last matched centre (a similar area). A small
   object's velocity, estimated from a few far-apart noisy boxes, can put the prediction several of its
   own widths off after 8–16 frames unseen, and the object was counted again (docs/counting.md).
5. Birth with hysteresis: an unmatched high detection (``score >= new_track_thresh``) starts a
   tentative track, confirmed after ``n_init`` frames of evidence and at least 3 hits (two points
   always fit a velocity, a third checks it); a tentative track
   missed more than ``tentative_max_miss`` frames in a row is dropped. Across skipped frames, a tentative
   track with 2 hits spanning ``n_init`` frames whose prediction leaves the view is confirmed then: its
   third hit could never come (``exit_confirm``; every frame, it had been confirmed). Death: a confirmed track
   unmatched for more than ``max_lost`` frames is removed (until then it is *lost* and can be re-found).
6. Given the frame size, a lost track whose prediction leaves the view is *parked* on the border where it
   left (position clamped, velocity zeroed): nothing is seen past the border to extrapolate, and a camera
   yaw or pan brings the object back in where it went out, within the lost track's wide allowance (on a
   dense synthetic video this removed 8 of 9 double counts of re-entering objects; docs/counting.md).

No birth on a tracked object: a detection left unmatched that lies mostly inside a box matched this frame,
or holds one mostly inside it (intersection > ``birth_overlap_max`` of the smaller box), starts no track.
In crowded water the detector also boxes part of an object, or an object with its neighbour or wake;
those second boxes persist and were confirmed as false tracks (docs/counting.md).

Every frame count is in *source* frames, so the tracker means the same time when frames are skipped
(``update(..., dt=4)``: every 4th frame, or a live source that dropped frames): a hit closing a gap
of ``dt`` frames is ``dt`` frames of evidence, and the miss limits become ``ceil(limit / dt)`` updates.
At ``dt = 1`` this is the plain frame-count behaviour.

Matching cost is ``1 - IoU`` of boxes enlarged by ``buffer`` × their size on each side (buffered
IoU): floating debris is a few pixels wide, and two 6-px boxes 4 px apart have IoU 0 although
they are the same object one frame later. The cost and the assignment (``lap``, else scipy, else
greedy) are in :mod:`flowdet.runtime.track.assignment`.

A track counts once (``flowdet.runtime.track.counting``) when it becomes *confirmed*: unconfirmed
tracks never reach a counter, so a flickering false box is not an object.
"""
from __future__ import annotations

from collections import deque
from dataclasses import fields, replace

import numpy as np

from flowdet.core.boxes import box_overlap_of_smaller
from flowdet.core.detections import Detections
from flowdet.errors import InputError
from flowdet.runtime.track.assignment import ASSIGNMENT, _buffered_iou, centre_gate_cost, linear_assignment  # noqa: F401 (re-exported)
from flowdet.runtime.track.gmc import warp_states
from flowdet.runtime.track.kalman import KalmanBox, _scale, _xywh_to_xyxy, kf_predict, kf_update  # noqa: F401 (re-exported)
from flowdet.runtime.track.track import Track, TrackerConfig, TrackState


def _inside(x: np.ndarray, frame_size: tuple[int, int]) -> bool:
    """Whether the centre of state ``x`` (cx, cy, ...) is inside a (width, height) frame."""
    return 0.0 <= x[0] <= float(frame_size[0]) and 0.0 <= x[1] <= float(frame_size[1])


def _park(x: np.ndarray, frame_size: tuple[int, int]) -> None:
    """A lost track's state (cx, cy, w, h, vx, vy, ...) whose centre is outside the view: clamp the centre
    onto the border and stop it, in place."""
    if _inside(x, frame_size):
        return
    w, h = float(frame_size[0]), float(frame_size[1])
    x[0], x[1] = min(max(x[0], 0.0), w), min(max(x[1], 0.0), h)
    x[4:6] = 0.0


class ByteTracker:
    """Online tracker; feed it every processed frame of one source, in order.

    >>> tr = ByteTracker()                       # or ByteTracker(config), ByteTracker(n_init=3)
    >>> tracks = tr.update(dets)                 # a Detections; the confirmed tracks matched this frame
    >>> tr.newly_confirmed                       # tracks confirmed by this frame (count them)
    >>> tr.reset()                               # a new scene: no tracks, ids from 1 again

    ``config`` is copied (with ``overrides`` applied to the copy): the caller's config is never changed.
    """

    def __init__(self, config: TrackerConfig | None = None, two_stage: bool = True, **overrides):
        unknown = sorted(set(overrides) - {f.name for f in fields(TrackerConfig)})
        if unknown:
            raise InputError(f"tracker: unknown option {unknown[0]!r}")
        self.cfg = replace(config or TrackerConfig(), **overrides)
        self.cfg.validate()
        self.two_stage = two_stage
        self.reset()

    def reset(self) -> None:
        """Forget every track and start ids at 1 again (a new video or scene); the config stays."""
        self.tracks: list[Track] = []
        self.frame = 0
        self._uid = 0
        self._next_id = 1
        self.newly_confirmed: list[Track] = []
        self.removed: list[Track] = []
        self.graveyard: list[Track] = []   # every removed confirmed track (id > 0), for offline scoring

    @classmethod
    def sort_baseline(cls) -> ByteTracker:
        """SORT's configuration of the same code (the comparison baseline): one association stage on
        detections above 0.5, plain IoU >= 0.3, confirmed after 3 hits, dropped after 1 miss."""
        return cls(TrackerConfig(high_thresh=0.5, low_thresh=0.5, new_track_thresh=0.5, match_thresh=0.7,
                                 tentative_match_thresh=0.7, n_init=3, tentative_max_miss=0, max_lost=1,
                                 buffer=0.0, birth_overlap_max=1.0, recover_radius=0.0, exit_confirm=False),
                   two_stage=False)

    @property
    def confirmed_count(self) -> int:
        """Ids handed out so far = objects counted."""
        return self._next_id - 1

    def _common_shift(self, boxes: np.ndarray) -> np.ndarray | None:
        """Median (dx, dy) from confirmed tracks' predicted centres to their detections, matched with the
        wide (tentative) buffer; None when fewer than ``common_motion_min`` tracks match."""
        n = self.cfg.common_motion_min
        act = [t for t in self.tracks if t.state == TrackState.CONFIRMED and t.misses == 0]
        if n <= 0 or len(act) < n or len(boxes) < n:
            return None
        tb = self._pred_boxes(act)
        per = np.full(len(act), self.cfg.tentative_buffer)
        pairs = linear_assignment(1.0 - _buffered_iou(tb, boxes, per), self.cfg.match_thresh)
        if len(pairs) < n:
            return None
        i, j = np.array(pairs).T
        d = (boxes[j, :2] + boxes[j, 2:]) / 2 - (tb[i, :2] + tb[i, 2:]) / 2
        med = np.median(d, axis=0)
        # Only a motion the tracks share: debris drifting every which way has no common shift.
        spread = float(np.median(np.linalg.norm(d - med, axis=1)))
        return med if spread <= 0.5 * float(np.linalg.norm(med)) else None

    def _gather(self) -> tuple[np.ndarray, np.ndarray]:
        """The states of ``self.tracks`` as a batch: rows of the previous update's batch (their filters are
        views of it) plus the tracks born since (row -1)."""
        rows = np.array([t.row for t in self.tracks], np.int64)
        old = rows >= 0
        if old.all():
            return self._X[rows], self._P[rows]
        new = np.nonzero(~old)[0]
        X, P = np.empty((len(rows), 8)), np.empty((len(rows), 8, 8))
        if old.any():
            X[old], P[old] = self._X[rows[old]], self._P[rows[old]]
        X[new] = np.stack([self.tracks[k].kf.x for k in new])
        P[new] = np.stack([self.tracks[k].kf.P for k in new])
        return X, P

    def _pred_boxes(self, tracks: list[Track]) -> np.ndarray:
        """Predicted xyxy boxes of tracks present at the start of this update (rows of its state batch)."""
        return _xywh_to_xyxy(self._X[[t.row for t in tracks], :4])

    def _match(self, tracks: list[Track], boxes: np.ndarray, thresh: float) -> list[tuple[int, int]]:
        if not tracks or len(boxes) == 0:
            return []
        tb = self._pred_boxes(tracks)
        b, tb_ = self.cfg.buffer, self.cfg.tentative_buffer
        # Confirmed tracks: the motion model knows where they go; its error grows with the source frames
        # it extrapolates over since the track was last seen (skipped and missed frames): the allowance
        # grows as √dt × (1 + misses), a random walk's spread, capped at the tentative one. New tracks
        # (velocity 0) search wide.
        if b <= 0:
            per = np.zeros(len(tracks))
        else:
            misses = np.array([-1 if t.state == TrackState.TENTATIVE else t.misses for t in tracks], np.float64)
            per = np.where(misses < 0, tb_, np.minimum(tb_, b * np.sqrt(self._dt) * (1 + misses)))
        cost = 1.0 - _buffered_iou(tb, boxes, per)
        return linear_assignment(cost, thresh)

    def _recover(self, pool: list[Track], boxes: np.ndarray, cand: np.ndarray) -> list[int]:
        """Stage 4, across skipped frames: the confirmed / lost tracks of ``pool`` still unmatched take
        would-be births (detection indices ``cand``) near their predicted or last matched centre; returns the
        indices into ``cand`` taken."""
        unmatched = [t for t in pool if not t.updated]
        if not unmatched or len(cand) == 0:
            return []
        X = self._X[[t.row for t in unmatched]]
        # The search radius grows like a random walk's spread with the source frames since last matched.
        frames = np.array([t.misses + 1 for t in unmatched], np.float64) * self._dt
        radius = self.cfg.recover_radius * np.sqrt(frames) * _scale(X)   # × the longer side (>= 4 px)
        # The last matched centre (trail holds the matched centres; with trail=0 it is empty: the prediction).
        last = np.array([t.trail[-1] if t.trail else (x[0], x[1]) for t, x in zip(unmatched, X)], np.float64)
        pairs = linear_assignment(centre_gate_cost(X[:, :4], last, radius, boxes[cand]), 1.0)
        self._hit_pairs(unmatched, pairs, cand)
        return [di for _, di in pairs]

    def _births_apart(self, boxes: np.ndarray, scores: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Which candidate births (detection indices ``cand``) are not a part / superset box of a box matched
        this frame, nor of a higher-scored candidate (two nested boxes appearing together: one track)."""
        lim = self.cfg.birth_overlap_max
        tracked = boxes[[d for _, d in self._pending]]
        keep = (box_overlap_of_smaller(boxes[cand], tracked) <= lim).all(1)
        if keep.sum() > 1:
            idx = np.nonzero(keep)[0]
            idx = idx[np.argsort(-scores[cand[idx]], kind="stable")]
            nested = box_overlap_of_smaller(boxes[cand[idx]], boxes[cand[idx]]) > lim
            for r in range(1, len(idx)):   # greedy by score, as NMS; few births per frame
                if nested[r, :r][keep[idx[:r]]].any():
                    keep[idx[r]] = False
        return keep

    def _hit_pairs(self, tracks: list[Track], pairs: list[tuple[int, int]], dets: np.ndarray) -> None:
        """One stage's matches: (index into ``tracks``, index into ``dets``, which holds detection indices)."""
        d = dets.tolist()   # Python ints: numpy scalars cost more per hit than the hit itself
        for ti, di in pairs:
            self._hit(tracks[ti], d[di])

    def _hit(self, t: Track, d: int) -> None:
        """Track ``t`` matched detection ``d`` of this update (the per-detection values are precomputed
        Python lists: per-element numpy scalars cost more than the rest of the hit)."""
        f = self._frame
        self._pending.append((t, d))
        t.box, t.score, t.class_id = f["boxes"][d], f["scores"][d], f["cls"][d]
        t.hits += 1
        t.span += self._dt
        t.misses = 0
        t.updated = True
        t.trail.append(f["centers"][d])
        if t.state == TrackState.LOST:
            t.state = TrackState.CONFIRMED
        elif t.state == TrackState.TENTATIVE and t.span >= self.cfg.n_init and t.hits >= min(3, self.cfg.n_init):
            self._confirm(t)

    def _confirm(self, t: Track) -> None:
        t.state = TrackState.CONFIRMED
        t.id = self._next_id
        self._next_id += 1
        self.newly_confirmed.append(t)

    def update(self, dets: Detections, dt: float = 1.0, warp: np.ndarray | None = None,
               frame_size: tuple[int, int] | None = None) -> list[Track]:
        """One frame's detections (boxes xyxy in original pixels, every score the tracker should see: down
        to ``low_thresh``) → the confirmed tracks matched in it.

        ``dt``: source frames since the previous update (frames skipped + 1); ``warp``: the 2×3 camera
        motion from the previous processed frame to this one (:class:`flowdet.runtime.track.gmc.CameraMotion`),
        applied to the predicted states before association; ``frame_size``: (width, height) of the
        frame, to park lost tracks that left the view (step 6 above; None: not parked)."""
        cfg = self.cfg
        self.frame += 1
        self.newly_confirmed = []
        self.removed = []
        self._dt = max(1.0, float(dt))
        # The hysteresis is in source frames, so it means the same time when frames are skipped: n_init
        # frames of evidence (with at least 3 hits), and the miss limits converted to updates at this gap.
        tent_miss = int(np.ceil(cfg.tentative_max_miss / self._dt))
        max_lost = int(np.ceil(cfg.max_lost / self._dt))
        boxes = np.array(dets.boxes, np.float64).reshape(-1, 4)   # a copy: tracks keep rows of it as their box
        scores = np.asarray(dets.scores, np.float64).reshape(-1)
        cls = np.asarray(dets.class_ids).reshape(-1)
        self._frame = {"boxes": boxes, "scores": scores.tolist(), "cls": [int(c) for c in cls.tolist()],
                       "centers": [tuple(c) for c in ((boxes[:, :2] + boxes[:, 2:]) / 2).tolist()]}
        self._pending: list[tuple[Track, int]] = []
        if self.tracks:
            self._predict(dt, warp)
        high = np.nonzero(scores >= cfg.high_thresh)[0]
        low = np.nonzero((scores >= cfg.low_thresh) & (scores < cfg.high_thresh))[0] if self.two_stage else \
            np.zeros(0, np.int64)

        # Only across skipped frames: frame to frame the motion model alone keeps up (and it costs a matching).
        shift = self._common_shift(boxes[high]) if self.tracks and dt > 1 else None
        if shift is not None:
            self._X[:, :2] += shift
        pool = [t for t in self.tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        tentative = [t for t in self.tracks if t.state == TrackState.TENTATIVE]
        # Stage 1: high detections ↔ confirmed + lost tracks.
        m1 = self._match(pool, boxes[high], cfg.match_thresh)
        self._hit_pairs(pool, m1, high)
        free = np.ones(len(high), bool)
        free[[di for _, di in m1]] = False
        left_high = high[free]
        # Stage 2: low detections ↔ confirmed tracks (not lost) left unmatched.
        rest = [t for t in pool if not t.updated and t.state == TrackState.CONFIRMED]
        if len(low):
            self._hit_pairs(rest, self._match(rest, boxes[low], cfg.low_match_thresh), low)
        # Stage 3: tentative tracks ↔ remaining high detections.
        m3 = self._match(tentative, boxes[left_high], cfg.tentative_match_thresh)
        self._hit_pairs(tentative, m3, left_high)
        born = np.ones(len(left_high), bool)
        born[[di for _, di in m3]] = False
        if cfg.recover_radius > 0 and self._dt > 1 and born.any():
            # Stage 4 only across skipped frames: frame to frame stage 1's allowance keeps up, and a wider
            # search there took new objects' births (every-frame misses up on the dense videos).
            idx = np.nonzero(born)[0]   # every high detection left, as stage 1 offers lost tracks
            born[idx[self._recover(pool, boxes, left_high[idx])]] = False
        born &= scores[left_high] >= cfg.new_track_thresh
        if cfg.birth_overlap_max < 1 and born.any():
            born[np.nonzero(born)[0][~self._births_apart(boxes, scores, left_high[born])]] = False
        if self._pending:
            rows = [t.row for t, _ in self._pending]
            self._X[rows], self._P[rows] = kf_update(self._X[rows], self._P[rows],
                                                     boxes[[d for _, d in self._pending]])
        for d in left_high[born]:
            self._birth(boxes[d], float(scores[d]), int(cls[d]))
        self.tracks = [t for t in self.tracks if t.updated or self._missed(t, tent_miss, max_lost, frame_size)]
        self.graveyard.extend(t for t in self.removed if t.id > 0)
        return [t for t in self.tracks if t.state == TrackState.CONFIRMED and t.updated]

    def _predict(self, dt: float, warp: np.ndarray | None) -> None:
        """Every track's Kalman state predicted ``dt`` frames ahead (and moved by the camera's ``warp``) as
        one batch; each filter's x, P become views of a row of it."""
        X, P = self._gather()
        if dt > 1:
            # Across skipped frames the size is held: a tiny object's size rate is mostly noise (and
            # rotation), and extrapolated × dt it shrinks the box until its detection no longer matches.
            X[:, 6:8] = 0.0
        X, P = kf_predict(X, P, dt)
        if warp is not None:
            X, P = warp_states(X, P, np.asarray(warp, np.float64))
        self._X, self._P = X, P    # this update's state batch; each filter's x, P are views of a row
        for k, t in enumerate(self.tracks):
            t.kf.x, t.kf.P = X[k], P[k]
            t.row = k
            t.updated = False
            t.age += 1

    def _birth(self, box: np.ndarray, score: float, cls: int) -> None:
        """A new (tentative) track on an unmatched detection; confirmed at once when ``n_init`` <= 1."""
        self._uid += 1
        t = Track(KalmanBox(box), box.astype(np.float64), score, cls, self._uid, trail=deque(maxlen=self.cfg.trail))
        t.first_center = t.center
        t.trail.append(t.center)
        self.tracks.append(t)
        if self.cfg.n_init <= 1:
            self._confirm(t)

    def _missed(self, t: Track, tent_miss: int, max_lost: int, frame_size: tuple[int, int] | None) -> bool:
        """A track this frame did not match: counted as a miss, lost or removed (into ``removed``);
        whether it is kept."""
        cfg = self.cfg
        t.misses += 1
        # Unmatched: keep its size as it is. A size rate extrapolated over the frames it stays
        # lost (× dt when frames are skipped) collapses a small box to nothing, and it is lost for good.
        t.kf.x[6:8] = 0.0
        t.box = t.kf.box()  # the prediction (drawn/reported only once matched again)
        if (t.state == TrackState.TENTATIVE and cfg.exit_confirm and self._dt > 1 and frame_size is not None
                and t.hits >= 2 and t.span >= cfg.n_init and not _inside(t.kf.x, frame_size)):
            self._confirm(t)   # left the view before its third hit could come
        if t.state == TrackState.TENTATIVE and t.misses > tent_miss:
            self.removed.append(t)
            return False
        if t.state in (TrackState.CONFIRMED, TrackState.LOST):
            t.state = TrackState.LOST
            if t.misses > max_lost:
                self.removed.append(t)
                return False
            if frame_size is not None:
                _park(t.kf.x, frame_size)
        return True
