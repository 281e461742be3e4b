"""Constant-velocity Kalman filter on boxes (cx, cy, w, h), batched over tracks (numpy; torch-free).

Velocities are in pixels per *source frame*; :func:`kf_predict` takes ``dt`` = source frames since the
previous processed frame, so a tracker fed every 4th frame (or a live source that dropped frames)
predicts 4 frames ahead with the uncertainty of 4 single-frame steps (closed form, not a loop).
"""
from __future__ import annotations

import numpy as np


class KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, w, h); noise proportional to the box size with a
    floor of ``min_size`` px, so tiny boxes are not over-trusted. The tracker predicts and updates
    all its filters at once (:func:`kf_predict`, :func:`kf_update`); a single filter is a batch of one."""

    def __init__(self, box: np.ndarray, min_size: float = 4.0):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        w, h = max(box[2] - box[0], 1e-3), max(box[3] - box[1], 1e-3)
        self.x = np.array([cx, cy, w, h, 0, 0, 0, 0], np.float64)
        s = max(w, h, min_size)
        self.P = np.diag(np.square(np.array([0.1] * 4 + [0.625] * 4) * s))

    def box(self) -> np.ndarray:
        return _xywh_to_xyxy(self.x[None, :4])[0]


MIN_SIZE = 4.0
_Q_POS, _Q_VEL = 0.05, 0.0125   # process noise per frame, × box size
_Q1 = np.array([_Q_POS] * 4 + [_Q_VEL] * 4)
_F1 = np.eye(8)
_F1[:4, 4:] = np.eye(4)


def _xywh_to_xyxy(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[:, :2] - x[:, 2:4] / 2, x[:, :2] + x[:, 2:4] / 2], axis=1)


def _scale(X: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(X[:, 2], X[:, 3]), MIN_SIZE)


def kf_predict(X: np.ndarray, P: np.ndarray, dt: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Batched predict ``dt`` frames ahead: X [N, 8], P [N, 8, 8].

    The same as ``dt`` single-frame predicts with the noise at the current box size: with F = [[I, I],
    [0, I]] per frame and Q = diag(qp, qv), Σₖ Fᵏ Q Fᵏᵀ (k < dt) = [[dt·qp + S₂·qv, S₁·qv], [S₁·qv, dt·qv]],
    S₁ = Σk = dt(dt−1)/2, S₂ = Σk² = (dt−1)dt(2dt−1)/6."""
    dt = max(float(dt), 1.0)
    s = _scale(X)
    if dt == 1.0:   # the common case, kept lean: the tracker predicts every track every frame
        X = X @ _F1.T
        X[:, 2:4] = np.maximum(X[:, 2:4], 1e-3)
        P = _F1 @ P @ _F1.T
        P[:, np.arange(8), np.arange(8)] += np.square(_Q1[None, :] * s[:, None])
        return X, P
    qp = np.square(_Q_POS * s)[:, None] * np.ones(4)        # [N, 4]
    qv = np.square(_Q_VEL * s)[:, None] * np.ones(4)
    s1, s2 = dt * (dt - 1) / 2, (dt - 1) * dt * (2 * dt - 1) / 6
    F = np.eye(8)
    F[:4, 4:] = dt * np.eye(4)
    X = X @ F.T
    X[:, 2:4] = np.maximum(X[:, 2:4], 1e-3)
    P = F @ P @ F.T
    i = np.arange(4)
    P[:, i, i] += dt * qp + s2 * qv
    P[:, i + 4, i + 4] += dt * qv
    P[:, i, i + 4] += s1 * qv
    P[:, i + 4, i] += s1 * qv
    return X, P


def kf_update(X: np.ndarray, P: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched update with xyxy measurements [N, 4]."""
    z = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
    s = _scale(X)
    S = P[:, :4, :4].copy()
    S[:, np.arange(4), np.arange(4)] += np.square(0.05 * s)[:, None]
    PHt = P[:, :, :4]                                          # P Hᵀ  [N, 8, 4]
    if np.count_nonzero(S) == S.shape[0] * 4:
        # The coordinates never mix without a camera warp (F, Q and the initial P are per coordinate),
        # so S is diagonal: the gain is a division, 10× cheaper than a batched solve.
        K = PHt / S[:, np.arange(4), np.arange(4)][:, None, :]
    else:
        K = np.linalg.solve(S, PHt.transpose(0, 2, 1)).transpose(0, 2, 1)   # [N, 8, 4]
    X = X + (K @ (z - X[:, :4])[:, :, None])[:, :, 0]
    P = P - K @ P[:, :4, :]
    return X, P
