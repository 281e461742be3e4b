"""Global motion compensation (GMC) between processed frames, for the tracker (numpy + cv2; torch-free).

When frames are skipped (``--vid-stride``, or a live source whose newest-frame policy drops frames),
the camera pans, pitches and the water surface flows between two processed frames; a constant-velocity
prediction in image pixels then misses small boxes and an object gets a second id (a redundant count).
:class:`CameraMotion` estimates the image motion of the whole frame from the previous processed frame
to the current one, and :func:`warp_states` moves every track's Kalman state by it before
association (as BoT-SORT's GMC does; this is our own code).

Estimate: sparse optical flow on a downscaled grey frame — Shi–Tomasi corners
(``cv2.goodFeaturesToTrack``) in the previous frame, pyramidal Lucas–Kanade
(``cv2.calcOpticalFlowPyrLK``) into the current one, then a RANSAC fit
(``cv2.estimateAffinePartial2D``: rotation + uniform scale + translation, or ``estimateAffine2D``) in
full-resolution pixels. Features on the water move with the camera *and* with the surface current;
floating debris moves with both too, so the fitted motion predicts where it goes.
Too few tracked corners or a failed fit → identity (the tracker falls back to its own prediction).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from flowdet.errors import InputError

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MODELS = ("partial", "affine", "translation")


@dataclass
class GMCConfig:
    width: int = 320            # the grey frame is downscaled to this width (px) for the flow
    max_corners: int = 200
    quality: float = 0.01       # goodFeaturesToTrack quality level
    min_distance: float = 6.0   # px at the downscaled size
    ransac_px: float = 1.5      # RANSAC reprojection threshold, px at the downscaled size
    model: str = "partial"      # partial (4 dof) | affine (6 dof) | translation
    min_inliers: int = 12

    def validate(self) -> None:
        if self.model not in MODELS:
            raise InputError(f"gmc model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.width < 32 or self.max_corners < 4:
            raise InputError("gmc: width >= 32 and max_corners >= 4 are required")


class CameraMotion:
    """Feed every processed frame of one source, in order; :meth:`update` returns the 2×3 affine that
    maps the previous processed frame's pixels to this one's (identity for the first frame)."""

    def __init__(self, config: GMCConfig | None = None):
        self.cfg = config or GMCConfig()
        self.cfg.validate()
        self.prev: np.ndarray | None = None
        self.prev_pts: np.ndarray | None = None
        self.scale = 1.0
        self.last_inliers = 0

    def reset(self) -> None:
        """Forget the previous frame (a new session of a live source: the view may have changed)."""
        self.prev = self.prev_pts = None

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        g = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        h, w = g.shape[:2]
        self.scale = min(1.0, self.cfg.width / float(w))
        if self.scale < 1.0:
            g = cv2.resize(g, (int(round(w * self.scale)), int(round(h * self.scale))), interpolation=cv2.INTER_AREA)
        return g

    def _corners(self, g: np.ndarray) -> np.ndarray | None:
        h, w = g.shape
        mask = np.zeros_like(g)
        mask[int(0.02 * h):int(0.98 * h), int(0.02 * w):int(0.98 * w)] = 255   # borders: black bars, warps
        return cv2.goodFeaturesToTrack(g, maxCorners=self.cfg.max_corners, qualityLevel=self.cfg.quality,
                                       minDistance=self.cfg.min_distance, blockSize=3, mask=mask)

    def update(self, frame: np.ndarray) -> np.ndarray:
        g = self._grey(frame)
        prev, prev_pts = self.prev, self.prev_pts
        self.prev = g
        self.prev_pts = self._corners(g)
        self.last_inliers = 0
        if prev is None or prev_pts is None or len(prev_pts) < self.cfg.min_inliers or prev.shape != g.shape:
            return IDENTITY.copy()
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, g, prev_pts, None, winSize=(15, 15), maxLevel=3)
        ok = st.reshape(-1) == 1
        a, b = prev_pts.reshape(-1, 2)[ok], nxt.reshape(-1, 2)[ok]
        if len(a) < self.cfg.min_inliers:
            return IDENTITY.copy()
        m = estimate_motion(a, b, self.cfg.model, self.cfg.ransac_px)
        if m is None:
            return IDENTITY.copy()
        m, self.last_inliers = m
        if self.last_inliers < self.cfg.min_inliers:
            return IDENTITY.copy()
        # Back to full-resolution pixels: M_full = S⁻¹ M S with S = diag(scale).
        m = m.copy()
        m[:, 2] /= self.scale
        return m


def estimate_motion(a: np.ndarray, b: np.ndarray, model: str = "partial",
                    ransac_px: float = 1.5) -> tuple[np.ndarray, int] | None:
    """Robust 2×3 motion a → b (point arrays [N, 2]) and its inlier count; None when the fit fails."""
    a = np.asarray(a, np.float32).reshape(-1, 2)
    b = np.asarray(b, np.float32).reshape(-1, 2)
    if model == "translation":
        d = b - a
        med = np.median(d, axis=0)
        inl = np.linalg.norm(d - med, axis=1) <= ransac_px
        if not inl.any():
            return None
        t = d[inl].mean(axis=0)
        return np.array([[1.0, 0.0, t[0]], [0.0, 1.0, t[1]]]), int(inl.sum())
    fit = cv2.estimateAffinePartial2D if model == "partial" else cv2.estimateAffine2D
    m, inl = fit(a, b, method=cv2.RANSAC, ransacReprojThreshold=ransac_px, maxIters=500, confidence=0.99)
    if m is None or inl is None:
        return None
    return m.astype(np.float64), int(inl.sum())


def warp_states(X: np.ndarray, P: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move Kalman states (cx, cy, w, h, vcx, vcy, vw, vh) [N, 8] and covariances [N, 8, 8] by the
    2×3 affine ``m``: centres by the full affine, velocities by its linear part, sizes (and their
    rates) by its scale along x and y."""
    if len(X) == 0:
        return X, P
    A, t = m[:, :2], m[:, 2]
    sx, sy = float(np.hypot(A[0, 0], A[1, 0])), float(np.hypot(A[0, 1], A[1, 1]))
    T = np.zeros((8, 8))
    T[0:2, 0:2] = A
    T[4:6, 4:6] = A
    T[2, 2], T[3, 3], T[6, 6], T[7, 7] = sx, sy, sx, sy
    X = X @ T.T
    X[:, 0:2] += t
    P = T @ P @ T.T
    return X, P
