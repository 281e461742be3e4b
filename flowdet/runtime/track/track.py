"""A tracked object (:class:`Track`) and the tracker's settings (:class:`TrackerConfig`): the data of
:mod:`flowdet.runtime.track.tracker`, also used by the counter and the stream (numpy; torch-free)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from flowdet.errors import InputError
from flowdet.runtime.track.kalman import KalmanBox


class TrackState(Enum):
    """A track's life: born *tentative*; *confirmed* (given an id, counted once) after enough evidence;
    *lost* while a confirmed track goes unmatched (it can be re-found); then removed."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass(slots=True)   # slots: the tracker reads and writes these per track per frame
class Track:
    """One tracked object. ``box``: the matched detection's box this frame (else the prediction);
    ``id``: 0 while tentative, then a positive id assigned at confirmation (ids are never reused);
    ``trail``: the last centres (original pixels), for drawing; ``first_center``: where it was born."""

    kf: KalmanBox
    box: np.ndarray
    score: float
    class_id: int
    uid: int                      # internal, assigned at birth
    id: int = 0
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    span: float = 1.0             # source frames of evidence: each hit adds the frame gap (dt) it closed
    misses: int = 0
    age: int = 1
    first_center: tuple[float, float] = (0.0, 0.0)
    trail: deque = field(default_factory=lambda: deque(maxlen=30))
    updated: bool = True          # matched in the latest frame
    row: int = -1                 # its row in the tracker's state batch during an update

    @property
    def center(self) -> tuple[float, float]:
        return float((self.box[0] + self.box[2]) / 2), float((self.box[1] + self.box[3]) / 2)


@dataclass
class TrackerConfig:
    # Scores (flowdet stream --track-high / --track-low / --track-birth). --conf is not one of them: it only
    # filters the boxes written (docs/counting.md).
    high_thresh: float = 0.5       # first stage: these detections match any track and may start one
    low_thresh: float = 0.1        # second stage: [low, high) only keeps confirmed tracks alive
    new_track_thresh: float = 0.6  # a high detection left unmatched starts a track from this score (birth)
    match_thresh: float = 0.8      # max cost (1 - buffered IoU) of a first-stage match
    low_match_thresh: float = 0.5  # second stage (low-score detections)
    tentative_match_thresh: float = 0.7
    n_init: int = 4                # source frames of evidence to confirm (and count); and >= 3 hits
    tentative_max_miss: int = 1    # missed frames a tentative track survives (hysteresis on birth)
    max_lost: int = 30             # frames a confirmed track survives unmatched (death)
    buffer: float = 0.3            # box enlargement for matching, × box size per side
    tentative_buffer: float = 2.0  # for tentative and lost tracks: their motion is not known (yet / any more)
    trail: int = 30
    # A left-over detection whose intersection with a box matched this frame exceeds this share of the
    # smaller of the two boxes starts no track (a part / superset box of a tracked object; 1 = off).
    birth_overlap_max: float = 0.6
    # Common motion from the tracks, when frames were skipped (dt > 1): before association, shift every
    # prediction by the median offset between the confirmed tracks' predictions and their (wide-matched)
    # detections, when at least this many match and agree (0 = off). A camera pan or the current moves
    # all debris alike; see docs/counting.md.
    common_motion_min: int = 2
    # Across skipped frames (dt > 1): unmatched confirmed / lost tracks re-find a would-be birth within this
    # × √(frames since last matched) × their longer side of their predicted or last centre (0 = off).
    recover_radius: float = 0.5
    # Across skipped frames: a tentative track with 2 hits over n_init frames that leaves the view counts.
    exit_confirm: bool = True

    def validate(self) -> None:
        if not 0 < self.birth_overlap_max <= 1:
            raise InputError(f"tracker: birth_overlap_max must be in (0, 1], got {self.birth_overlap_max}")
        if not 0 <= self.low_thresh <= self.high_thresh <= 1 or not 0 <= self.new_track_thresh <= 1:
            raise InputError(f"tracker thresholds need 0 <= low ({self.low_thresh}, --track-low) <= high "
                             f"({self.high_thresh}, --track-high) <= 1 and 0 <= birth ({self.new_track_thresh}, "
                             "--track-birth) <= 1")
        if self.recover_radius < 0:
            raise InputError(f"tracker: recover_radius must be >= 0, got {self.recover_radius}")
        if self.n_init < 1 or self.max_lost < 0 or self.tentative_max_miss < 0:
            raise InputError("tracker: n_init >= 1, max_lost >= 0 and tentative_max_miss >= 0 are required")
