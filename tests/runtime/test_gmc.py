"""Camera-motion compensation (flowdet.runtime.track.gmc) and the tracker's frame gap (dt)."""
import numpy as np
import pytest

from flowdet.core.detections import Detections
from flowdet.runtime.track.gmc import CameraMotion, GMCConfig, estimate_motion, warp_states
from flowdet.runtime.track.kalman import KalmanBox, kf_predict
from flowdet.runtime.track.tracker import ByteTracker

cv2 = pytest.importorskip("cv2")


def _d(boxes, scores) -> Detections:
    """A frame's detections for the tracker (one class)."""
    scores = np.asarray(scores, float).reshape(-1)
    return Detections(np.asarray(boxes, float).reshape(-1, 4), scores, np.zeros(len(scores), np.int64))


def _world(seed=0, size=(520, 760)):
    rng = np.random.default_rng(seed)
    w = cv2.GaussianBlur(rng.uniform(0, 255, size).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(w, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _view(world, x, y, w=320, h=180):
    return cv2.cvtColor(np.ascontiguousarray(world[y:y + h, x:x + w]), cv2.COLOR_GRAY2BGR)


def test_recovers_a_known_shift():
    world = _world()
    cm = CameraMotion(GMCConfig(width=320))
    assert np.allclose(cm.update(_view(world, 100, 100)), np.eye(2, 3))   # first frame: identity
    m = cm.update(_view(world, 113, 94))      # camera moved +13, -6 → the image moves -13, +6
    assert cm.last_inliers >= 12
    assert np.allclose(m[:, :2], np.eye(2), atol=0.02)
    assert np.allclose(m[:, 2], [-13, 6], atol=0.5)


def test_downscaled_estimate_is_in_full_resolution_pixels():
    world = _world(1, (900, 1400))
    cm = CameraMotion(GMCConfig(width=320))
    cm.update(_view(world, 200, 200, 640, 360))
    m = cm.update(_view(world, 220, 190, 640, 360))
    assert np.allclose(m[:, 2], [-20, 10], atol=1.0)


def test_no_texture_gives_identity():
    cm = CameraMotion()
    flat = np.full((180, 320, 3), 90, np.uint8)
    cm.update(flat)
    assert np.allclose(cm.update(flat), np.eye(2, 3))


def test_estimate_motion_rejects_outliers():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 300, (60, 2))
    b = a + [5.0, -3.0]
    b[:10] = rng.uniform(0, 300, (10, 2))       # a sixth of the points move on their own
    m, inl = estimate_motion(a, b, "partial", 1.0)
    assert inl >= 45 and np.allclose(m[:, 2], [5, -3], atol=0.1)


def test_warp_moves_centre_velocity_and_size():
    X = np.array([[10.0, 20.0, 4.0, 6.0, 1.0, 0.0, 0.0, 0.0]])
    P = np.eye(8)[None].copy()
    m = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -1.0]])
    X2, P2 = warp_states(X, P, m)
    assert np.allclose(X2[0], [25, 39, 8, 12, 2, 0, 0, 0])
    assert np.allclose(P2[0, 0, 0], 4.0)


def test_predict_dt_equals_repeated_single_steps():
    kb = KalmanBox(np.array([10.0, 10.0, 22.0, 18.0]))
    X, P = kb.x[None].copy(), kb.P[None].copy()
    X[0, 4:6] = [1.5, -0.5]
    X1, P1 = X.copy(), P.copy()
    for _ in range(4):
        X1, P1 = kf_predict(X1, P1)
    X4, P4 = kf_predict(X, P, 4)
    assert np.allclose(X4, X1)
    assert np.allclose(P4, P1, rtol=1e-9)   # the noise scale is the box size, unchanged without size rate


def _panned_sequence(n=40, stride=4):
    """8 static objects, always in view, in a textured world seen by a camera panning jerkily (up to
    ~27 px between processed frames, reversing); every ``stride``-th frame."""
    world = _world(2)
    rng = np.random.default_rng(3)
    objs = np.stack([rng.permutation(np.linspace(275, 445, 8)), np.linspace(185, 295, 8)], 1)
    for x, y in objs:
        cv2.rectangle(world, (int(x) - 5, int(y) - 4), (int(x) + 5, int(y) + 4), 0, -1)
    frames, dets = [], []
    for k in range(0, n * stride, stride):
        cx = int(round(200 + 60 * np.sin(k / 9.0)))
        cy = int(round(150 + 20 * np.cos(k / 7.0)))
        frames.append(_view(world, cx, cy))
        c = objs - [cx, cy]
        dets.append(np.concatenate([c - [5, 4], c + [5, 4]], 1))
    return frames, dets


def _ids(use_gmc: bool) -> int:
    frames, dets = _panned_sequence()
    cm, tr = CameraMotion(), ByteTracker(common_motion_min=0)   # the frames alone, not the tracks
    for f, d in zip(frames, dets):
        tr.update(_d(d, np.full(len(d), 0.9)), dt=4, warp=cm.update(f) if use_gmc else None)
    return tr.confirmed_count


def test_known_pan_at_stride_4_keeps_the_ids():
    assert _ids(use_gmc=True) == 8      # one id per object through every pan


@pytest.mark.parametrize("common_motion_min, ok", [(2, True), (0, False)])
def test_common_motion_from_the_tracks_keeps_ids_through_a_pan(common_motion_min, ok):
    """No frames: 12 static objects whose boxes all jump with a camera pan (every 4th frame, up to
    ~16 px a step); the median shift of the tracks keeps one id each, without it they break. (The match
    allowance grows with √dt, so a smaller pan holds without the shift too.)"""
    rng = np.random.default_rng(0)
    objs = rng.uniform(40, 600, (12, 2))
    tr = ByteTracker(common_motion_min=common_motion_min)
    for j in range(40):
        k = 4 * j
        c = objs + [36 * np.sin(k / 9.0), 12 * np.cos(k / 7.0)] + rng.normal(0, 0.3, objs.shape)
        tr.update(_d(np.concatenate([c - 5, c + 5], 1), np.full(12, 0.9)), dt=4)
    assert (tr.confirmed_count == 12) == ok
