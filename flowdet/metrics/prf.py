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

from flowdet.ops.boxes import box_iou


def prf_sweep(records: list[Any], results: list[dict], cat_ids: list[int], iou_thr: float = 0.5) -> dict[str, Any]:
    """→ {"conf", "precision", "recall", "f1" (arrays over 101 thresholds 0..1), "best_f1",
    "best_conf", "tp", "fp", "fn" at best_conf, "gt"}. ``results``: COCO result dicts."""
    cls_of = {c: i for i, c in enumerate(cat_ids)}
    by_img: dict[int, list[dict]] = {}
    for r in results:
        by_img.setdefault(int(r["image_id"]), []).append(r)
    scores, tps = [], []
    n_gt = 0
    for rec in records:
        keep = ~rec.ignore
        n_gt += int(keep.sum())
        for c in np.unique(np.concatenate([rec.classes, [cls_of.get(r["category_id"], -1) for r in by_img.get(rec.image_id, [])]])):
            dets = sorted((r for r in by_img.get(rec.image_id, []) if cls_of.get(r["category_id"]) == c),
                          key=lambda r: -r["score"])
            gmask = rec.classes == c
            gt, gign = rec.boxes[gmask], rec.ignore[gmask]
            used = np.zeros(len(gt), bool)
            for d in dets:
                x, y, w, h = d["bbox"]
                hit = False
                if len(gt):
                    ious = box_iou(np.array([[x, y, x + w, y + h]], np.float32), gt.astype(np.float32))[0]
                    ious[used & ~gign] = -1
                    j = int(ious.argmax())
                    if ious[j] >= iou_thr:
                        if gign[j]:
                            continue  # matched a don't-care box: neither TP nor FP
                        used[j], hit = True, True
                scores.append(float(d["score"]))
                tps.append(hit)
    s, t = np.asarray(scores), np.asarray(tps, bool)
    conf = np.linspace(0, 1, 101)
    tp = np.array([(t & (s >= c)).sum() for c in conf], float)
    n_det = np.array([(s >= c).sum() for c in conf], float)
    p = np.where(n_det > 0, tp / np.maximum(n_det, 1), 1.0)
    r = tp / max(n_gt, 1)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    b = int(f1.argmax())
    return {"conf": conf, "precision": p, "recall": r, "f1": f1, "best_f1": float(f1[b]), "best_conf": float(conf[b]),
            "tp": int(tp[b]), "fp": int(n_det[b] - tp[b]), "fn": int(n_gt - tp[b]), "gt": n_gt}


def prf_png(sweep: dict[str, Any], out: str | Path, title: str = "") -> Path:
    """P, R and F1 against the score threshold, the best-F1 threshold marked (ultralytics' F1_curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, colour in (("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green")):
        ax.plot(sweep["conf"], sweep[key], label=key, color=colour)
    ax.axvline(sweep["best_conf"], color="grey", ls="--", lw=1)
    ax.annotate(f"best F1 {sweep['best_f1']:.2f} at conf {sweep['best_conf']:.2f}", (sweep["best_conf"], sweep["best_f1"]),
                xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.set_xlabel("score threshold (conf)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "precision / recall / F1 at IoU 0.5")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
