"""The track filter on constructed detections: what confirmed tracks carry is kept, a track's gap is
filled, the rest above --ignore-above is an ignore region, a folder without time order is not tracked."""
from __future__ import annotations

import numpy as np
import pytest

from flowdet.core.boxes import box_iou
from flowdet.core.detections import Detections
from flowdet.errors import InputError
from flowdet.pseudo.track_filter import DETECTION, GAP, TRACK, FilterConfig, track_filter, untracked

SIZE = (320, 240)


def _det(boxes, scores) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                      np.zeros(len(scores), np.int64))


def _obj(k: int, row: int = 40) -> list[float]:
    """A 10-px object drifting right 3 px a frame."""
    return [20 + 3 * k, row, 30 + 3 * k, row + 10]


def _frames(n: int, miss=(), extra=None) -> list:
    """n frames of one object (missed in frames ``miss``), plus ``extra[k]`` = [(box, score)]."""
    extra = extra or {}
    out = []
    for k in range(n):
        boxes = [] if k in miss else [_obj(k)]
        scores = [] if k in miss else [0.9]
        for b, s in extra.get(k, []):
            boxes.append(b)
            scores.append(s)
        out.append((k, _det(boxes, scores), SIZE))
    return out


def test_kept_boxes_are_track_carried_and_a_flash_is_an_ignore_region():
    frames = _frames(20, extra={8: [([200, 150, 210, 160], 0.8)], 12: [([250, 20, 260, 30], 0.2)]})
    out, n_tracks = track_filter(frames, FilterConfig())
    assert n_tracks == 1
    for k, p in enumerate(out):
        kept = p.kept()
        assert list(p.origin[kept]) == [TRACK] and (p.track_ids[kept] > 0).all()
        assert np.allclose(p.boxes[kept][0], _obj(k)) and p.scores[kept][0] == pytest.approx(0.9)
    # frame 0..3: the track is still tentative online; offline its first boxes are the same object
    assert all(p.kept().sum() == 1 for p in out[:4])
    # a 0.8 box seen once: no confirmed track carries it -> an ignore region, not a training box
    p8 = out[8]
    assert p8.ignore.sum() == 1 and np.allclose(p8.boxes[p8.ignore][0], [200, 150, 210, 160])
    assert p8.origin[p8.ignore][0] == DETECTION
    # a 0.2 box (below --ignore-above 0.25) is dropped
    assert len(out[12]) == 1


def test_gap_fill_creates_a_box_where_the_detector_missed():
    frames = _frames(20, miss=(10, 11))
    out, _ = track_filter(frames, FilterConfig())
    for k in (10, 11):
        p = out[k]
        assert list(p.origin) == [GAP] and not p.ignore.any() and p.track_ids[0] == out[9].track_ids[0]
        assert box_iou(p.boxes, np.array([_obj(k)], np.float32))[0, 0] > 0.9
        assert p.scores[0] == pytest.approx(0.9)
    assert not any((p.origin == GAP).any() for k, p in enumerate(out) if k not in (10, 11))
    # a gap longer than --max-gap is left empty
    out, _ = track_filter(frames, FilterConfig(max_gap=1))
    assert len(out[10]) == len(out[11]) == 0


def test_low_score_boxes_on_a_confirmed_track_are_kept_with_their_score():
    frames = _frames(20)
    frames[12] = (12, _det([_obj(12)], [0.3]), SIZE)   # the teacher doubts it here: below --conf
    out, _ = track_filter(frames, FilterConfig())
    assert list(out[12].origin) == [TRACK] and out[12].scores[0] == pytest.approx(0.3)


def test_frame_gaps_are_the_tracker_step():
    """Mined frames every 3rd frame: the tracker gets dt = 3, and --max-gap counts source frames."""
    frames = [(3 * k, _det([_obj(3 * k)], [0.9]), SIZE) for k in range(12) if k != 6]
    out, n = track_filter(frames, FilterConfig(max_gap=5))
    assert n == 1 and all(p.kept().sum() == 1 for p in out)
    assert not any((p.origin == GAP).any() for p in out)   # frames 15 .. 21: a 5-frame gap has no frame to fill
    frames = [(k, d, s) for k, d, s in frames]
    frames.insert(6, (18, _det([], []), SIZE))             # the frame is there, the detection is not
    out, _ = track_filter(frames, FilterConfig(max_gap=5))
    assert list(out[6].origin) == [GAP] and box_iou(out[6].boxes, np.array([_obj(18)], np.float32))[0, 0] > 0.8


def test_untracked_keeps_conf_and_ignores_the_uncertain():
    det = _det([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0.9, 0.3, 0.12])
    p = untracked(det, FilterConfig())
    assert p.kept().sum() == 1 and np.allclose(p.boxes[p.kept()][0], [0, 0, 10, 10])
    assert p.ignore.sum() == 1 and np.allclose(p.boxes[p.ignore][0], [20, 20, 30, 30])
    assert (p.track_ids == 0).all() and set(p.origin) == {DETECTION}


def test_thresholds_are_checked():
    with pytest.raises(InputError):
        FilterConfig(low=0.3, ignore_above=0.2).validate()
    with pytest.raises(InputError):
        FilterConfig(low=0.6, conf=0.5).validate()
    with pytest.raises(InputError):
        FilterConfig(max_gap=-1).validate()


def test_smoothing_steadies_a_jittered_track_without_biasing_its_drift():
    jitter = [np.array([2, -2, 2, -2]) * (1 if k % 2 else -1) for k in range(20)]   # alternating, zero mean
    frames = [(k, _det([np.array(_obj(k)) + jitter[k]], [0.9]), SIZE) for k in range(20)]
    raw, _ = track_filter(frames, FilterConfig(smooth=0))
    smooth, _ = track_filter(frames, FilterConfig(smooth=1))
    truth = np.array([_obj(k) for k in range(20)], np.float32)
    err_raw = np.abs(np.concatenate([p.boxes for p in raw]) - truth).mean()
    err_smooth = np.abs(np.concatenate([p.boxes for p in smooth]) - truth).mean()
    assert np.allclose(np.concatenate([p.boxes for p in raw]), truth + np.array(jitter))   # 0: the teacher's boxes
    assert err_smooth < 0.5 * err_raw
    # the end frames have no symmetric neighbour: kept as detected (a one-sided mean would lag the drift)
    assert np.allclose(smooth[0].boxes[0], truth[0] + jitter[0])
