"""Matching for the tracker (numpy; torch-free): buffered IoU cost and minimum-cost assignment.

The assignment uses ``lap`` when installed, else ``scipy.optimize.linear_sum_assignment`` (both exact:
the same optimum), else a greedy numpy matching (an approximation, equal in practice for well-separated
objects); see :func:`linear_assignment`.
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

    Rows and columns may stay unmatched: the matching maximises the total gain ``sum(thresh - cost)``
    over its pairs (``lap.lapjv``'s ``cost_limit``: an unmatched row and column cost ``thresh`` between
    them), so one good pair is preferred to two poor ones whose gains add up to less. ``method``: "lap"
    or "scipy" (exact, the same optimum up to ties), "greedy" (cheapest feasible pair first: at least half
    the optimal gain, in practice much closer; see docs/counting.md), or None (the best installed,
    :data:`ASSIGNMENT`).

    A row whose only feasible column (``cost <= thresh``) has no other feasible row is matched to it
    directly: no other pair competes for either, and matching (cost <= thresh) is never worse than
    leaving both unmatched. Well-separated objects are nearly all such pairs, so only the ambiguous
    rows and columns reach the solver."""
    if cost.size == 0:
        return []
    feasible = cost <= thresh
    per_row, per_col = feasible.sum(1), feasible.sum(0)
    col_of = feasible.argmax(1)
    alone = (per_row == 1) & (per_col[col_of] == 1)
    lone = np.nonzero(alone)[0]
    pairs = list(zip(lone.tolist(), col_of[lone].tolist()))
    rows = np.nonzero((per_row > 0) & ~alone)[0]
    if len(rows) == 0:
        return pairs
    taken = np.zeros(cost.shape[1], bool)
    taken[col_of[lone]] = True
    cols = np.nonzero((per_col > 0) & ~taken)[0]
    sub = cost[np.ix_(rows, cols)]
    return pairs + [(int(rows[i]), int(cols[j])) for i, j in _solve(sub, thresh, method or ASSIGNMENT)]


def _solve(cost: np.ndarray, thresh: float, method: str) -> list[tuple[int, int]]:
    if method == "lap":
        import lap

        _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        return [(i, int(j)) for i, j in enumerate(x) if j >= 0]
    if method == "scipy":
        from scipy.optimize import linear_sum_assignment as lsa

        # Maximum total gain, unmatched allowed: infeasible pairs gain 0, so any full assignment that
        # scipy returns, less its infeasible pairs, is an optimal partial one. (A large finite cost for
        # infeasible pairs instead would make scipy maximise the number of feasible pairs first.)
        feasible = cost <= thresh
        gain = np.where(feasible, thresh - np.where(feasible, cost, thresh), 0.0)
        r, k = lsa(gain, maximize=True)
        return [(int(i), int(j)) for i, j in zip(r, k) if feasible[i, j]]
    return _greedy(cost, thresh)


def _buffered_iou(a: np.ndarray, b: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """IoU [len(a), len(b)] after enlarging both boxes of pair (i, j) by ``buf[i]`` × their size per side
    (at least 1 px when ``buf[i] > 0``).

    The enlargement of ``b`` depends on the row only through ``buf[i]``, and a tracker has a few distinct
    buffers (confirmed / tentative / missed k frames): per distinct value, enlarge both sets once and take
    the plain IoU of the [A_k, B] block from 1-D coordinate arrays (``ufunc.outer``: the fastest
    broadcast numpy has at tracker sizes)."""
    out = np.empty((len(a), len(b)), np.float64)
    if len(a) == 0 or len(b) == 0:
        return out
    buf = np.asarray(buf, np.float64)
    values = sorted(set(buf.tolist()))
    for f in values:
        rows = slice(None) if len(values) == 1 else np.nonzero(buf == f)[0]
        floor = 1.0 if f > 0 else 0.0
        ab, bb = a[rows].T, b.T                                       # [4, A_k], [4, B]
        pa = np.maximum((ab[2:] - ab[:2]) * f, floor)                  # [2, A_k]: pad per side
        pb = np.maximum((bb[2:] - bb[:2]) * f, floor)
        a1, a2, b1, b2 = ab[:2] - pa, ab[2:] + pa, bb[:2] - pb, bb[2:] + pb
        ox = np.minimum.outer(a2[0], b2[0]) - np.maximum.outer(a1[0], b1[0])
        oy = np.minimum.outer(a2[1], b2[1]) - np.maximum.outer(a1[1], b1[1])
        inter = np.maximum(ox, 0.0, out=ox)
        inter *= np.maximum(oy, 0.0, out=oy)                           # [A_k, B]
        union = np.add.outer(np.prod(a2 - a1, axis=0), np.prod(b2 - b1, axis=0)) - inter
        out[rows] = inter / np.maximum(union, 1e-9, out=union)
    return out


def centre_gate_cost(pred: np.ndarray, last: np.ndarray, radius: np.ndarray, boxes: np.ndarray,
                     area_ratio: float = 3.0) -> np.ndarray:
    """Cost [T, D] of re-finding T unmatched tracks among D detections by centre distance: the distance
    from a detection's centre to the nearer of the track's predicted centre (``pred`` [T, 4] as cx, cy,
    w, h) and its last matched centre (``last`` [T, 2]), divided by ``radius`` [T] (px). A pair whose
    areas differ by more than ``area_ratio``× costs 2 (never matched at a threshold of 1)."""
    zc = (boxes[:, :2] + boxes[:, 2:]) / 2                                         # [D, 2]
    d_pred = np.hypot(np.subtract.outer(pred[:, 0], zc[:, 0]), np.subtract.outer(pred[:, 1], zc[:, 1]))
    d_last = np.hypot(np.subtract.outer(last[:, 0], zc[:, 0]), np.subtract.outer(last[:, 1], zc[:, 1]))
    ratio = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)[None, :] / np.maximum(pred[:, 2:3] * pred[:, 3:4], 1e-6)
    cost = np.minimum(d_pred, d_last) / np.maximum(radius, 1e-6)[:, None]
    return np.where((ratio <= area_ratio) & (ratio >= 1.0 / area_ratio), cost, 2.0)
