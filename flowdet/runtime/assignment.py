"""Matching for the tracker (numpy; torch-free): buffered IoU cost and minimum-cost assignment.

The assignment uses ``lap`` when installed, else ``scipy.optimize.linear_sum_assignment``, else a
greedy numpy matching (equivalent in practice for well-separated objects); see :func:`linear_assignment`.
"""
from __future__ import annotations

import numpy as np


def _greedy(cost: np.ndarray, thresh: float) -> list[tuple[int, int]]:
    rows, cols = np.nonzero(cost <= thresh)
    order = np.argsort(cost[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    out = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            out.append((r, c))
    return out


def _backend() -> str:
    try:
        import lap  # noqa: F401

        return "lap"
    except ImportError:
        pass
    try:
        from scipy.optimize import linear_sum_assignment  # noqa: F401

        return "scipy"
    except ImportError:
        return "greedy"


ASSIGNMENT = _backend()


def linear_assignment(cost: np.ndarray, thresh: float, method: str | None = None) -> list[tuple[int, int]]:
    """Minimum-cost matching of rows to columns, keeping only pairs with ``cost <= thresh``.

    ``method``: "lap", "scipy", "greedy" or None (the best installed, :data:`ASSIGNMENT`)."""
    if cost.size == 0:
        return []
    method = method or ASSIGNMENT
    if method == "lap":
        import lap

        _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        return [(i, int(j)) for i, j in enumerate(x) if j >= 0]
    if method == "scipy":
        from scipy.optimize import linear_sum_assignment as lsa

        c = np.where(cost <= thresh, cost, thresh + 1e4)
        r, k = lsa(c)
        return [(int(i), int(j)) for i, j in zip(r, k) if cost[i, j] <= thresh]
    return _greedy(cost, thresh)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _buffered_iou(a: np.ndarray, b: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """IoU [len(a), len(b)] after enlarging both boxes of pair (i, j) by ``buf[i]`` × their size per side
    (at least 1 px when ``buf[i] > 0``).

    Per axis on centres and half-sizes: the overlap of [ca ± ha] and [cb ± hb] is
    clip(min(ha + hb − |ca − cb|, 2·min(ha, hb)), 0) — [A, B] arrays only, no [A, B, 2] temporaries."""
    fa = buf[:, None]                                                  # [A, 1]
    on = (fa > 0).astype(np.float64)

    def axis(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Overlap [A, B] and enlarged sides [A, 1], [A, B] along x (k = 0) or y (k = 1)."""
        wa, wb = a[:, k + 2] - a[:, k], b[:, k + 2] - b[:, k]           # [A], [B]
        ha = wa[:, None] / 2 + np.maximum(wa[:, None] * fa, on)         # [A, 1]
        hb = wb[None, :] / 2 + np.maximum(wb[None, :] * fa, on)         # [A, B]
        dc = np.abs((a[:, k] + a[:, k + 2])[:, None] - (b[:, k] + b[:, k + 2])[None, :]) / 2
        return np.clip(np.minimum(ha + hb - dc, 2 * np.minimum(ha, hb)), 0, None), 2 * ha, 2 * hb

    (ox, sax, sbx), (oy, say, sby) = axis(0), axis(1)
    inter = ox * oy
    return inter / np.maximum(sax * say + sbx * sby - inter, 1e-9)
