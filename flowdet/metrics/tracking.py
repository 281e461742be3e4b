"""Tracking and counting scores in numpy (scipy's assignment when installed): IDF1, HOTA, MOTA and
the count decomposition of Surfnet (Chagneux et al., Computo 2023).

Inputs are per-frame lists, one entry per frame, aligned between ground truth and prediction::

    frames = [(ids [K] int, boxes [K, 4] xyxy), ...]

- **Count decomposition**: each predicted track (a counted, confirmed id) is assigned to the ground
  truth object it matches (IoU >= ``iou`` in the per-frame matching) in most of its frames — if that is
  at least ``min_share`` of its frames, else it is *false*. A ground truth object with no track is
  *missed*, with one *correct*, with k > 1 one correct and k - 1 *redundant*. Count precision =
  correct / predicted tracks, count recall = correct / ground-truth objects (those seen in at least
  ``min_gt_frames`` frames: an object visible for one frame cannot be counted by any tracker that
  confirms after a few hits).
- **IDF1** (Ristani et al. 2016): the best one-to-one id mapping over the whole sequence.
- **HOTA** (Luiten et al. 2021): the geometric mean of detection and association accuracy, averaged
  over IoU thresholds 0.05…0.95, following TrackEval's implementation.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from flowdet.ops.boxes import box_iou
from flowdet.runtime.assignment import linear_assignment

FrameTracks = tuple[np.ndarray, np.ndarray]


def _max_assign(score: np.ndarray) -> list[tuple[int, int]]:
    """Maximum-score one-to-one matching (pairs with score > 0)."""
    if score.size == 0:
        return []
    top = float(score.max())
    if top <= 0:
        return []
    return [(i, j) for i, j in linear_assignment(top - score, top - 1e-12) if score[i, j] > 0]


def _ids(frames: Sequence[FrameTracks]) -> np.ndarray:
    vals = [np.asarray(f[0]).reshape(-1) for f in frames]
    return np.unique(np.concatenate(vals)) if vals else np.zeros(0, np.int64)


def _check(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks]) -> None:
    if len(gt) != len(pr):
        raise ValueError(f"ground truth has {len(gt)} frames, prediction {len(pr)}")


def count_decomposition(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], iou: float = 0.5,
                        min_share: float = 0.5, min_gt_frames: int = 3) -> dict[str, Any]:
    """Correct / redundant / false / missed counts, count precision and recall (see the module doc)."""
    _check(gt, pr)
    g_ids, p_ids = _ids(gt), _ids(pr)
    gi = {int(v): k for k, v in enumerate(g_ids)}
    pi = {int(v): k for k, v in enumerate(p_ids)}
    overlap = np.zeros((len(g_ids), len(p_ids)), np.int64)
    p_frames = np.zeros(len(p_ids), np.int64)
    g_frames = np.zeros(len(g_ids), np.int64)
    for (gid, gb), (pid, pb) in zip(gt, pr):
        gid, pid = np.asarray(gid).reshape(-1), np.asarray(pid).reshape(-1)
        for v in gid:
            g_frames[gi[int(v)]] += 1
        for v in pid:
            p_frames[pi[int(v)]] += 1
        if len(gid) and len(pid):
            m = box_iou(np.asarray(gb).reshape(-1, 4), np.asarray(pb).reshape(-1, 4))
            for a, b in linear_assignment(1 - m, 1 - iou):
                overlap[gi[int(gid[a])], pi[int(pid[b])]] += 1
    countable = g_frames >= min_gt_frames
    tracks_of = np.zeros(len(g_ids), np.int64)
    false = 0
    for k in range(len(p_ids)):
        if len(g_ids) == 0 or overlap[:, k].max() < min_share * p_frames[k]:
            false += 1
            continue
        tracks_of[int(np.argmax(overlap[:, k]))] += 1
    # A track on a not-countable object (seen < min_gt_frames) is neither rewarded nor penalised.
    on_uncountable = int(tracks_of[~countable].sum())
    t = tracks_of[countable]
    correct = int((t > 0).sum())
    redundant = int(np.clip(t - 1, 0, None).sum())
    missed = int((t == 0).sum())
    n_pred = correct + redundant + false
    n_gt = int(countable.sum())
    return {"gt_objects": n_gt, "predicted": n_pred, "correct": correct, "redundant": redundant, "false": false,
            "missed": missed, "on_uncountable": on_uncountable,
            "count_precision": correct / n_pred if n_pred else 1.0, "count_recall": correct / n_gt if n_gt else 1.0,
            "redundant_share": redundant / n_pred if n_pred else 0.0,
            "count_error": abs(n_pred - n_gt) / n_gt if n_gt else float(n_pred > 0)}


def idf1(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], iou: float = 0.5) -> dict[str, float]:
    """IDF1, IDP, IDR with the best global one-to-one id mapping."""
    _check(gt, pr)
    g_ids, p_ids = _ids(gt), _ids(pr)
    gi = {int(v): k for k, v in enumerate(g_ids)}
    pi = {int(v): k for k, v in enumerate(p_ids)}
    co = np.zeros((len(g_ids), len(p_ids)), np.float64)
    n_g = n_p = 0
    for (gid, gb), (pid, pb) in zip(gt, pr):
        gid, pid = np.asarray(gid).reshape(-1), np.asarray(pid).reshape(-1)
        n_g += len(gid)
        n_p += len(pid)
        if len(gid) and len(pid):
            m = box_iou(np.asarray(gb).reshape(-1, 4), np.asarray(pb).reshape(-1, 4)) >= iou
            a, b = np.nonzero(m)
            for x, y in zip(a, b):
                co[gi[int(gid[x])], pi[int(pid[y])]] += 1
    idtp = float(sum(co[i, j] for i, j in _max_assign(co)))
    return {"IDF1": 2 * idtp / (n_g + n_p) if n_g + n_p else 1.0, "IDP": idtp / n_p if n_p else 1.0,
            "IDR": idtp / n_g if n_g else 1.0}


def hota(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks]) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA averaged over alpha = 0.05…0.95 (TrackEval's algorithm)."""
    _check(gt, pr)
    alphas = np.arange(0.05, 0.99, 0.05)
    g_ids, p_ids = _ids(gt), _ids(pr)
    gi = {int(v): k for k, v in enumerate(g_ids)}
    pi = {int(v): k for k, v in enumerate(p_ids)}
    G, P = len(g_ids), len(p_ids)
    potential = np.zeros((G, P))
    g_count = np.zeros(G)
    p_count = np.zeros(P)
    sims = []
    for (gid, gb), (pid, pb) in zip(gt, pr):
        gx = np.array([gi[int(v)] for v in np.asarray(gid).reshape(-1)], np.int64)
        px = np.array([pi[int(v)] for v in np.asarray(pid).reshape(-1)], np.int64)
        s = box_iou(np.asarray(gb).reshape(-1, 4), np.asarray(pb).reshape(-1, 4))
        sims.append((gx, px, s))
        if len(gx) and len(px):
            denom = s.sum(0)[None, :] + s.sum(1)[:, None] - s
            sim_iou = np.where(denom > 1e-9, s / np.maximum(denom, 1e-9), 0.0)
            potential[gx[:, None], px[None, :]] += sim_iou
        g_count[gx] += 1
        p_count[px] += 1
    gas = potential / np.maximum(g_count[:, None] + p_count[None, :] - potential, 1e-9)
    tp = np.zeros(len(alphas))
    fn = np.zeros(len(alphas))
    fp = np.zeros(len(alphas))
    loc = np.zeros(len(alphas))
    matches = np.zeros((len(alphas), G, P))
    for gx, px, s in sims:
        if len(gx) == 0 or len(px) == 0:
            fn += len(gx)
            fp += len(px)
            continue
        score = gas[gx[:, None], px[None, :]] * s
        pairs = _max_assign(score)
        r = np.array([p[0] for p in pairs], np.int64)
        c = np.array([p[1] for p in pairs], np.int64)
        for a, alpha in enumerate(alphas):
            ok = s[r, c] >= alpha - 1e-9 if len(r) else np.zeros(0, bool)
            n = int(ok.sum())
            tp[a] += n
            fn[a] += len(gx) - n
            fp[a] += len(px) - n
            if n:
                loc[a] += s[r[ok], c[ok]].sum()
                matches[a, gx[r[ok]], px[c[ok]]] += 1
    det = tp / np.maximum(tp + fn + fp, 1)
    ass = np.zeros(len(alphas))
    for a in range(len(alphas)):
        m = matches[a]
        ass_a = m / np.maximum(g_count[:, None] + p_count[None, :] - m, 1)
        ass[a] = (m * ass_a).sum() / max(1.0, tp[a])
    h = np.sqrt(det * ass)
    return {"HOTA": float(h.mean()), "DetA": float(det.mean()), "AssA": float(ass.mean()),
            "LocA": float((loc / np.maximum(tp, 1)).mean())}


def count_error_per_interval(gt_times: Sequence[float], pr_times: Sequence[float], interval_s: float = 60.0,
                             duration_s: float | None = None) -> dict[str, Any]:
    """Objects per interval (ground truth by first sight, prediction by count time): mean absolute
    error per interval and the per-interval lists."""
    end = duration_s if duration_s is not None else max([0.0, *gt_times, *pr_times])
    n = max(1, int(np.ceil(end / interval_s - 1e-9)))
    g = np.bincount(np.minimum((np.asarray(gt_times) // interval_s).astype(int), n - 1), minlength=n)
    p = np.bincount(np.minimum((np.asarray(pr_times) // interval_s).astype(int), n - 1), minlength=n)
    return {"gt_per_interval": g.tolist(), "pred_per_interval": p.tolist(),
            "mae_per_interval": float(np.abs(g - p).mean())}
