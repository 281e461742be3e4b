"""Precision, recall and F1 against the score threshold (IoU ≥ 0.5), and the threshold to deploy at.

AP averages over thresholds; a deployment runs at one. This sweeps every score: detections sorted
by score, each greedily matched (per image and class, best IoU first as COCO does) to an unmatched
ground-truth box at IoU ≥ ``iou_thr``; ignore/crowd boxes absorb a match without counting.
Pure numpy: the ONNX eval path uses it too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.core.boxes import box_iou
from flowdet.utils import save_plot

FP, TP, IGNORED = 0, 1, -1  # greedy_match's status of a detection


def greedy_match(boxes: np.ndarray, scores: np.ndarray, gt: np.ndarray, gt_ignore: np.ndarray | None = None,
                 iou_thr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The one matching rule (this sweep, the demo's TP/FP/miss drawings): detections by falling
    score, each to the unmatched ground-truth box of best IoU ≥ ``iou_thr``; a match on an ignore box
    is neither TP nor FP. Boxes xyxy. → (status per detection in the given order: TP / FP / IGNORED,
    matched mask over ``gt``: False on a non-ignored box = a miss)."""
    gt = np.asarray(gt, np.float32).reshape(-1, 4)
    gign = np.zeros(len(gt), bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    status = np.full(len(boxes), FP, np.int64)
    used = np.zeros(len(gt), bool)
    if not len(gt) or not len(boxes):
        return status, used
    ious_all = box_iou(np.asarray(boxes, np.float32).reshape(-1, 4), gt)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        ious = ious_all[i].copy()
        ious[used & ~gign] = -1
        j = int(ious.argmax())
        if ious[j] >= iou_thr:
            if gign[j]:
                status[i] = IGNORED
            else:
                used[j], status[i] = True, TP
    return status, used


def prf_sweep(records: list[Any], results: list[dict], cat_ids: list[int], iou_thr: float = 0.5,
              dont_care: str = "iscrowd") -> dict[str, Any]:
    """→ {"conf", "precision", "recall", "f1" (arrays over 101 thresholds 0..1, for the plot), "best_f1",
    "best_conf", "precision_at_best", "recall_at_best", "tp", "fp", "fn" at best_conf, "gt"}. The best
    threshold is exact: F1 at every detection score (a 0.01 grid put a best score of 0.012 at 0.00). ``results``: COCO result dicts; ``dont_care``:
    which boxes are don't-care regions, as in the COCO evaluation (``ImageRecord.dont_care``)."""
    cls_of = {c: i for i, c in enumerate(cat_ids)}
    by_img: dict[int, list[dict]] = {}
    for r in results:
        by_img.setdefault(int(r["image_id"]), []).append(r)
    scores, tps = [], []
    n_gt = 0
    for rec in records:
        ignore = rec.dont_care(dont_care)
        keep = ~ignore
        n_gt += int(keep.sum())
        for c in np.unique(np.concatenate([rec.classes, [cls_of.get(r["category_id"], -1) for r in by_img.get(rec.image_id, [])]])):
            dets = [r for r in by_img.get(rec.image_id, []) if cls_of.get(r["category_id"]) == c]
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in dets)], np.float32)
            gmask = rec.classes == c
            status, _ = greedy_match(boxes.reshape(-1, 4), np.array([d["score"] for d in dets], np.float64),
                                     rec.boxes[gmask], ignore[gmask], iou_thr)
            for d, st in zip(dets, status):
                if st != IGNORED:
                    scores.append(float(d["score"]))
                    tps.append(st == TP)
    s, t = np.asarray(scores), np.asarray(tps, bool)
    conf = np.linspace(0, 1, 101)
    tp = np.array([(t & (s >= c)).sum() for c in conf], float)
    n_det = np.array([(s >= c).sum() for c in conf], float)
    p = np.where(n_det > 0, tp / np.maximum(n_det, 1), 1.0)
    r = tp / max(n_gt, 1)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    curves = {"conf": conf, "precision": p, "recall": r, "f1": f1, "gt": n_gt}
    best = _best_at_scores(s, t, n_gt)
    if best is None:  # no detection or none right: the grid's (F1 0) answer
        b = int(f1.argmax())
        best = {"best_f1": float(f1[b]), "best_conf": float(conf[b]), "precision_at_best": float(p[b]),
                "recall_at_best": float(r[b]), "tp": int(tp[b]), "fp": int(n_det[b] - tp[b]), "fn": int(n_gt - tp[b])}
    return {**curves, **best}


def _best_at_scores(scores: np.ndarray, is_tp: np.ndarray, n_gt: int) -> dict[str, Any] | None:
    """The F1-best threshold among the detection scores themselves ("keep score ≥ s"), or None
    when no detection is a true positive."""
    if not len(scores) or not is_tp.any():
        return None
    order = np.argsort(-scores, kind="stable")
    ss, cum_tp = scores[order], np.cumsum(is_tp[order])
    last = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]  # the last detection of each distinct score
    tp, n = cum_tp[last].astype(float), (last + 1).astype(float)
    p, r = tp / n, tp / max(n_gt, 1)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    b = int(f1.argmax())
    return {"best_f1": float(f1[b]), "best_conf": float(ss[last[b]]), "precision_at_best": float(p[b]),
            "recall_at_best": float(r[b]), "tp": int(tp[b]), "fp": int(n[b] - tp[b]), "fn": int(n_gt - tp[b])}


# What eval / train / the P-R-F1 plot say when no prediction matched a label (best F1 0): not
# "best F1 0.000 at conf 0.000", a threshold that means nothing.
NOTHING_MATCHED = "no prediction matched a label (IoU 0.5) at any score threshold: best F1 0, no threshold to deploy at"


def prf_png(sweep: dict[str, Any], out: str | Path, title: str = "") -> Path:
    """P, R and F1 against the score threshold, the best-F1 threshold marked (ultralytics' F1_curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, colour in (("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green")):
        ax.plot(sweep["conf"], sweep[key], label=key, color=colour)
    if sweep["best_f1"] > 0:
        ax.axvline(sweep["best_conf"], color="grey", ls="--", lw=1)
        ax.annotate(f"best F1 {sweep['best_f1']:.3f} at conf {sweep['best_conf']:.3f}",
                    (sweep["best_conf"], sweep["best_f1"]), xytext=(5, 5), textcoords="offset points", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no prediction matched a label", ha="center", transform=ax.transAxes, fontsize=9)
    ax.set_xlabel("score threshold (conf)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "precision / recall / F1 at IoU 0.5")
    return save_plot(fig, ax, out)
