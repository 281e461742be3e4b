"""Tracking and counting scores in numpy: IDF1, HOTA, MOTA (CLEAR MOT) and the count decomposition
of Surfnet (Chagneux et al., Computo 2023).

Matchings are exact maximum-weight matchings (``lap`` or scipy, :mod:`flowdet.runtime.track.assignment`):
IDF1, HOTA and MOTA equal TrackEval's (and motmetrics' IDF1 and MOTA) to 1e-6 on the same boxes
(tests/metrics/test_peer_check.py). Only when neither is installed (a warning says so), or with
``method="greedy"``, a greedy matching is used: an approximation whose scores can differ by up to
:data:`GREEDY_BOUND` (IDF1 only lower: 6.7e-3 on the peer-check table, 0.076 at worst seen; see
docs/counting.md).

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
- **MOTA** (CLEAR MOT, Bernardin & Stiefelhagen 2008) as TrackEval's CLEAR computes it:
  1 − (FN + FP + IDSW) / GT with per-frame matching at IoU >= 0.5.

``method`` (every score): the assignment backend, "lap", "scipy", "greedy" or None (the best installed).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flowdet import log
from flowdet.core.boxes import box_iou
from flowdet.runtime.track import assignment
from flowdet.runtime.track.assignment import linear_assignment

FrameTracks = tuple[np.ndarray, np.ndarray]
# How far the greedy backend's scores fell from the exact ones (|greedy - exact|, measured on 1,000 small
# random sequences with crossings and id swaps, tests/metrics/make_peer_reference.py's generator; a bound
# seen, not a guarantee: greedy's id mapping keeps at least half the optimal IDTP, IDF1 >= IDF1* / 2).
# Seen: IDF1 0.076 (always lower), HOTA 0.0045, DetA 0.027, AssA 0.0125, MOTA 0.030.
GREEDY_BOUND = {"IDF1": 0.08, "HOTA": 0.006, "DetA": 0.03, "AssA": 0.015, "MOTA": 0.035}
_greedy_warned = False


def _backend(method: str | None) -> str:
    """The assignment backend a score uses; warns once when it falls back to greedy."""
    global _greedy_warned
    if method is None and assignment.ASSIGNMENT == "greedy" and not _greedy_warned:
        _greedy_warned = True
        log.warn("tracking scores with the greedy matching (neither lap nor scipy is installed): IDF1 may fall "
                 f"short of the optimum by up to ~{GREEDY_BOUND['IDF1']} (`pip install lap` for exact scores)")
    return method or assignment.ASSIGNMENT


_EPS = float(np.finfo(float).eps)   # TrackEval's slack on thresholds ("similarity >= alpha - eps")


def _max_assign(score: np.ndarray, method: str | None = None) -> list[tuple[int, int]]:
    """Maximum-weight one-to-one matching: the pairs (score > 0) of largest total score, rows and
    columns free to stay unmatched. ``linear_assignment`` maximises the total ``thresh - cost`` over
    pairs with ``cost <= thresh``: with thresh = max score and cost = thresh - score that is the
    total score, on exactly the pairs with score > 0."""
    if score.size == 0:
        return []
    top = float(score.max())
    if top <= 0:
        return []
    cost = np.where(score > 0, top - score, top + 1.0)
    return linear_assignment(cost, top, _backend(method))


def _ids(frames: Sequence[FrameTracks]) -> np.ndarray:
    vals = [np.asarray(f[0]).reshape(-1) for f in frames]
    return np.unique(np.concatenate(vals)) if vals else np.zeros(0, np.int64)


def _check(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks]) -> None:
    if len(gt) != len(pr):
        raise ValueError(f"ground truth has {len(gt)} frames, prediction {len(pr)}")


def count_decomposition(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], iou: float = 0.5,
                        min_share: float = 0.5, min_gt_frames: int = 3, method: str | None = None) -> dict[str, Any]:
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
            for a, b in linear_assignment(1 - m, 1 - iou, _backend(method)):
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


def idf1(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], iou: float = 0.5,
         method: str | None = None) -> dict[str, float]:
    """IDF1, IDP, IDR with the best global one-to-one id mapping (0 where undefined: no boxes)."""
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
    idtp = float(sum(co[i, j] for i, j in _max_assign(co, method)))
    # 0 where a denominator is 0 (no boxes on one side), as TrackEval's Identity.
    return {"IDF1": 2 * idtp / max(1, n_g + n_p), "IDP": idtp / max(1, n_p), "IDR": idtp / max(1, n_g)}


def hota(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], method: str | None = None) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA averaged over alpha = 0.05…0.95 (TrackEval's algorithm; LocA is 1 at an
    alpha with no match, as there)."""
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
            sim_iou = np.where(denom > _EPS, s / np.maximum(denom, _EPS), 0.0)
            potential[gx[:, None], px[None, :]] += sim_iou
        g_count[gx] += 1
        p_count[px] += 1
    gas = potential / np.maximum(g_count[:, None] + p_count[None, :] - potential, 1e-9)
    # The matching does not depend on alpha: keep each frame's matched pairs and their IoU, then
    # count per alpha those with IoU >= alpha.
    mg, mp, ms = [], [], []
    for gx, px, s in sims:
        if len(gx) and len(px):
            pairs = np.array(_max_assign(gas[gx[:, None], px[None, :]] * s, method), np.int64).reshape(-1, 2)
            mg.append(gx[pairs[:, 0]])
            mp.append(px[pairs[:, 1]])
            ms.append(s[pairs[:, 0], pairs[:, 1]])
    pair = np.concatenate([g * P + p for g, p in zip(mg, mp)]) if mg else np.zeros(0, np.int64)
    iou = np.concatenate(ms) if ms else np.zeros(0)
    ok = iou[None, :] >= alphas[:, None] - _EPS                                   # [A, matched pairs]
    tp = ok.sum(1).astype(np.float64)
    fn, fp = g_count.sum() - tp, p_count.sum() - tp
    loc = (ok * iou[None, :]).sum(1)
    det = tp / np.maximum(tp + fn + fp, 1)
    ass = np.zeros(len(alphas))
    for a in range(len(alphas)):
        m = np.bincount(pair[ok[a]], minlength=G * P).reshape(G, P).astype(np.float64)
        ass_a = m / np.maximum(g_count[:, None] + p_count[None, :] - m, 1)
        ass[a] = (m * ass_a).sum() / max(1.0, tp[a])
    h = np.sqrt(det * ass)
    return {"HOTA": float(h.mean()), "DetA": float(det.mean()), "AssA": float(ass.mean()),
            "LocA": float((np.maximum(loc, 1e-10) / np.maximum(tp, 1e-10)).mean())}


def mota(gt: Sequence[FrameTracks], pr: Sequence[FrameTracks], iou: float = 0.5,
         method: str | None = None) -> dict[str, float]:
    """CLEAR MOT as TrackEval's CLEAR: MOTA, MOTP (mean IoU of the matches) and the TP / FN / FP / IDSW
    counts behind them.

    Per frame, ground truth and prediction are matched at IoU >= ``iou``, a pair that continues the
    previous matched frame's pair first (score 1000 + IoU), then by IoU. An id switch is a ground-truth
    object matched to another predicted id than the one it was last matched to (any frame before).
    As in TrackEval, a frame without ground truth or without predictions keeps the previous pairs, and
    a sequence without any ground-truth or predicted box has MOTA and MOTP 0."""
    _check(gt, pr)
    last: dict[int, int] = {}       # gt id -> the predicted id it was last matched to
    previous: dict[int, int] = {}   # the pairs of the last frame that had both gt and predictions
    tp = fn = fp = idsw = 0
    iou_sum = 0.0
    for (gid, gb), (pid, pb) in zip(gt, pr):
        gid, pid = np.asarray(gid).reshape(-1), np.asarray(pid).reshape(-1)
        if len(gid) == 0 or len(pid) == 0:
            fn += len(gid)
            fp += len(pid)
            continue
        s = box_iou(np.asarray(gb, np.float64).reshape(-1, 4), np.asarray(pb, np.float64).reshape(-1, 4))
        cont = np.array([[previous.get(int(g)) == int(p) for p in pid] for g in gid], bool)
        score = np.where(s >= iou - _EPS, 1000.0 * cont + s, 0.0)
        pairs = _max_assign(score, method)
        now: dict[int, int] = {}
        for a, b in pairs:
            g, p = int(gid[a]), int(pid[b])
            idsw += int(g in last and last[g] != p)
            last[g] = now[g] = p
            iou_sum += float(s[a, b])
        previous = now
        tp += len(pairs)
        fn += len(gid) - len(pairs)
        fp += len(pid) - len(pairs)
    n_gt = tp + fn
    defined = n_gt > 0 and tp + fp > 0
    return {"MOTA": (tp - fp - idsw) / n_gt if defined else 0.0, "MOTP": iou_sum / max(1, tp), "TP": tp, "FN": fn,
            "FP": fp, "IDSW": idsw}


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
