"""Data (and figures) of the demo report's sections, read from this run's artifacts only.

- :func:`ap_per_epoch` / :func:`plot_ap_per_epoch`: the evaluations training logged in metrics.csv;
- :func:`stream_frame`: one frame of the stream step, its detections (detections.jsonl) drawn as
  TP / FP / miss against the synthetic video's labels;
- :func:`size_rows`: the one size table (COCO buckets: label counts native and at the input size,
  AP and AR per bucket).
Everything returned is json-able and goes into summary.json, which the report is rendered from.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet.core.boxes import xywh_to_xyxy
from flowdet.demo.draw import draw_outcomes, legend_strip
from flowdet.errors import FlowdetError
from flowdet.utils import save_plot

EVAL_KEYS = ("AP", "AP50", "APs")  # what the trainer logs at each evaluation
SIZE_BUCKETS = [("small", "< 32² px", "APs_1000", "ARs_1000"), ("medium", "32²–96² px", "APm_1000", "ARm_1000"),
                ("large", "≥ 96² px", "APl_1000", "ARl_1000")]


def ap_per_epoch(metrics_csv: str | Path) -> list[dict[str, float]]:
    """Rows of metrics.csv that hold an evaluation: [{"epoch" (1-based, as the console), "AP", …}]."""
    path = Path(metrics_csv)
    if not path.is_file():
        return []
    rows = []
    with path.open() as f:
        for r in csv.DictReader(f):
            try:
                rows.append({"epoch": int(r["epoch"]), **{k: float(r[k]) for k in EVAL_KEYS}})
            except (KeyError, TypeError, ValueError):
                continue  # an epoch without evaluation (empty AP cells)
    return rows


def plot_ap_per_epoch(rows: list[dict[str, float]], out: str | Path) -> Path | None:
    """AP / AP50 / APs against epoch, one small PNG (None without evaluations)."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ep = [r["epoch"] for r in rows]
    for k in EVAL_KEYS:
        ax.plot(ep, [r[k] for r in rows], marker="o", ms=4, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation")
    ax.set_ylim(bottom=0)
    return save_plot(fig, ax, out)


def stream_frame(video: str | Path, video_ann: str | Path, detections: str | Path, out: str | Path,
                 width: int = 720) -> dict[str, Any]:
    """Draw the stream's detections on one of its frames: the one with the most TPs (then the most
    detections, then the most labels; the earliest on ties). → {"path", "frame", "time", "TP", "FP", "miss"}."""
    ann = json.loads(Path(video_ann).read_text())
    index_of = {im["id"]: int(im.get("frame_index", i)) for i, im in enumerate(ann["images"])}
    labels: dict[int, list] = {}
    for a in ann.get("annotations", []):
        if not a.get("iscrowd"):
            labels.setdefault(index_of[a["image_id"]], []).append(a["bbox"])
    dets = {}
    for line in Path(detections).read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            dets[int(d["frame"])] = d
    if not dets:
        raise FlowdetError(f"{detections}: no frames to show")

    def gt(k: int) -> np.ndarray:
        return xywh_to_xyxy(np.asarray(labels.get(k, []), np.float32).reshape(-1, 4))

    def score(k: int) -> tuple:
        from flowdet.metrics.prf import TP, greedy_match

        d = dets[k]
        status, _ = greedy_match(np.asarray(d["boxes"], np.float32).reshape(-1, 4), np.asarray(d["scores"]), gt(k))
        return int((status == TP).sum()), len(d["scores"]), len(labels.get(k, [])), -k

    k = max(dets, key=score)
    img = _read_frame(video, k)
    d = dets[k]
    vis, counts = draw_outcomes(img, np.asarray(d["boxes"], np.float32).reshape(-1, 4), np.asarray(d["scores"]), gt(k),
                                width=width)
    cv2.imwrite(str(out), np.vstack([legend_strip(vis.shape[1], counts), vis]))
    return {"path": str(out), "frame": k, "time": float(d.get("time", 0.0)), **counts}


def size_rows(train: dict[str, Any], val: dict[str, Any], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per COCO size bucket: training labels native and at the input size (``dataset_stats``'
    "native" / "resized"), validation labels, and the validation AP / AR (maxDets=1000) of the bucket."""
    rows = []
    for name, area, ap, ar in SIZE_BUCKETS:
        rows.append({"size": f"{name} ({area})", "train": train["native"][name],
                     "train_share": train["native"][f"{name}_share"], "train_at_input": train["resized"][name],
                     "train_at_input_share": train["resized"][f"{name}_share"], "val": val["native"][name],
                     "AP": metrics.get(ap, float("nan")), "AR": metrics.get(ar, float("nan"))})
    return rows


def _read_frame(video: str | Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    try:
        frame = None
        for _ in range(index + 1):  # sequential reads: mp4 seeking is not frame-exact everywhere
            ok, frame = cap.read()
            if not ok:
                raise FlowdetError(f"{video}: frame {index} cannot be read")
        return frame
    finally:
        cap.release()
