"""COCO box evaluation (pycocotools) with the summary computed here, not by ``COCOeval.summarize``.

``summarize()`` hard-codes which ``maxDets`` entry each line uses, so with the reference study's
``maxDets = [100, 300, 1000]`` it silently reports AP50/AP75/APs/APm/APl at 1000 detections and
"AR1/AR10/AR100" at 100/300/1000. We evaluate once with maxDets (1, 10, 100, 300, 1000) and read
both layouts from ``E.eval["precision"]`` [T, R, K, A, M] and ``E.eval["recall"]`` [T, K, A, M]
(T IoU thresholds .50:.05:.95, R 101 recall thresholds, K classes, A areas all/small/medium/large,
M maxDets). As in pycocotools a metric is −1 when no box falls in its range (e.g. APl on FloW).
"""
from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import numpy as np

from flowdet.utils import require

MAX_DETS: tuple[int, ...] = (1, 10, 100, 300, 1000)
_AREAS = ("all", "small", "medium", "large")

# key → (ap?, IoU threshold or None for .50:.95, area, maxDets)
METRICS: dict[str, tuple[bool, float | None, str, int]] = {
    "AP": (True, None, "all", 100), "AP50": (True, 0.5, "all", 100), "AP75": (True, 0.75, "all", 100),
    "APs": (True, None, "small", 100), "APm": (True, None, "medium", 100), "APl": (True, None, "large", 100),
    "AP50_1000": (True, 0.5, "all", 1000), "AP75_1000": (True, 0.75, "all", 1000),
    "APs_1000": (True, None, "small", 1000), "APm_1000": (True, None, "medium", 1000),
    "APl_1000": (True, None, "large", 1000),
    "AR1": (False, None, "all", 1), "AR10": (False, None, "all", 10), "AR100": (False, None, "all", 100),
    "AR300": (False, None, "all", 300), "AR1000": (False, None, "all", 1000),
    "ARs": (False, None, "small", 100), "ARm": (False, None, "medium", 100), "ARl": (False, None, "large", 100),
    "ARs_1000": (False, None, "small", 1000), "ARm_1000": (False, None, "medium", 1000),
    "ARl_1000": (False, None, "large", 1000),
}
STANDARD_LAYOUT = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# What the study's mmdetection run printed (summarize() with maxDets [100, 300, 1000]).
REFERENCE_LAYOUT = ("AP", "AP50_1000", "AP75_1000", "APs_1000", "APm_1000", "APl_1000",
                    "AR100", "AR300", "AR1000", "ARs_1000", "ARm_1000", "ARl_1000")


def _load_gt(gt: Any) -> Any:
    coco = require("pycocotools.coco")
    if isinstance(gt, coco.COCO):
        return gt
    with contextlib.redirect_stdout(io.StringIO()):
        return coco.COCO(str(gt))


def _load_results(gt: Any, results: list[dict]) -> Any:
    """A COCO object of the detections; an empty one (not loadRes's IndexError) for no detections."""
    coco = require("pycocotools.coco")
    known = set(gt.getImgIds())
    unknown = sorted({r["image_id"] for r in results} - known)
    if unknown:
        raise ValueError(f"{len(unknown)} result image_id(s) not in the ground truth, e.g. {unknown[:5]}")
    with contextlib.redirect_stdout(io.StringIO()):
        if results:  # loadRes adds id/area/segmentation to each dict: give it copies
            return gt.loadRes([dict(r) for r in results])
        dt = coco.COCO()
        dt.dataset = {"images": copy.deepcopy(gt.dataset.get("images", [])),
                      "categories": copy.deepcopy(gt.dataset.get("categories", [])), "annotations": []}
        dt.createIndex()
        return dt


def summarize(E: Any) -> dict[str, float]:
    """Every metric of :data:`METRICS` from an accumulated COCOeval (evaluated with :data:`MAX_DETS`)."""
    p = E.params
    out = {}
    for key, (is_ap, iou_thr, area, max_det) in METRICS.items():
        a, m = p.areaRngLbl.index(area), list(p.maxDets).index(max_det)
        arr = E.eval["precision"][..., a, m] if is_ap else E.eval["recall"][..., a, m]  # [T, (R,) K]
        if iou_thr is not None:
            arr = arr[np.isclose(p.iouThrs, iou_thr)]
        valid = arr[arr > -1]
        out[key] = float(valid.mean()) if valid.size else -1.0
    return out


def coco_evaluate(
    gt: str | Path | Any,
    results: list[dict],
    img_ids: list[int] | None = None,
    return_eval: bool = False,
) -> dict[str, float] | tuple[dict[str, float], Any]:
    """COCO bbox metrics of ``results`` against ``gt``.

    Args:
        gt: Ground truth: a COCO json path or a ``pycocotools.coco.COCO``.
        results: COCO result dicts {"image_id", "category_id", "bbox": [x, y, w, h], "score"}
            (e.g. from ``Detections.to_coco``); may be empty (every defined metric is then 0).
        img_ids: Evaluate on these images only (default: every image of ``gt``).
        return_eval: Also return the accumulated COCOeval (for :func:`pr_curve_png`).

    Returns:
        {key: value} for every key of :data:`METRICS` (−1 where no box is in range), or
        (that dict, COCOeval) when ``return_eval``.

    Raises:
        ValueError: If a result names an image that is not in ``gt``.
    """
    cocoeval = require("pycocotools.cocoeval")
    gt = _load_gt(gt)
    dt = _load_results(gt, results)
    E = cocoeval.COCOeval(gt, dt, "bbox")
    E.params.maxDets = list(MAX_DETS)
    if img_ids is not None:
        E.params.imgIds = sorted(int(i) for i in img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        E.evaluate()
        E.accumulate()
    stats = summarize(E)
    return (stats, E) if return_eval else stats


def _line(key: str, value: float) -> str:
    is_ap, iou_thr, area, max_det = METRICS[key]
    name = key.split("_")[0]
    iou = "0.50:0.95" if iou_thr is None else f"{iou_thr:.2f}"
    shown = "  n/a" if value < 0 else f"{value:.3f}"
    return f"  {name:<6} IoU={iou:<9} area={area:>6} maxDets={max_det:>4}  {shown}"


def format_table(stats: dict[str, float]) -> str:
    """Both layouts as text: standard COCO (maxDets 1/10/100) and the reference study's (100/300/1000)."""
    lines = ["COCO standard (maxDets 1/10/100)"]
    lines += [_line(k, stats[k]) for k in STANDARD_LAYOUT if k in stats]
    lines.append("Reference study layout (maxDets 100/300/1000)")
    lines += [_line(k, stats[k]) for k in REFERENCE_LAYOUT if k in stats]
    return "\n".join(lines)


def pr_curves(E: Any, max_dets: int = 100) -> dict[str, Any]:
    """Precision at each of the 101 recall thresholds, area "all", mean over classes:
    at IoU .50 and averaged over IoU .50:.95 (undefined points, −1 in COCOeval, are left out)."""
    p = E.params
    prec = E.eval["precision"][:, :, :, p.areaRngLbl.index("all"), list(p.maxDets).index(max_dets)]  # [T, R, K]

    def mean_valid(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        valid = x > -1
        total = np.where(valid, x, 0).sum(axis=axes)
        count = valid.sum(axis=axes)
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)

    at50 = prec[np.isclose(p.iouThrs, 0.5)][0]  # [R, K]
    return {"recall": np.asarray(p.recThrs, dtype=float).tolist(), "max_dets": max_dets,
            "precision_50": mean_valid(at50, (1,)).tolist(),
            "precision_50_95": mean_valid(prec, (0, 2)).tolist()}


def pr_curve_png(source: Any, out_path: str | Path, title: str = "precision–recall") -> Path:
    """Draw precision–recall at IoU .50 and at .50:.95 (mean) to a PNG.

    Args:
        source: An accumulated COCOeval (``coco_evaluate(..., return_eval=True)[1]``) or the
            dict of :func:`pr_curves` (which can be stored as json and drawn later).
        out_path: PNG path; parent folders are created.
        title: Plot title.

    Returns:
        ``out_path`` as a Path.
    """
    curves = source if isinstance(source, dict) else pr_curves(source)
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    try:
        for key, label in (("precision_50", "IoU 0.50"), ("precision_50_95", "IoU 0.50:0.95 (mean)")):
            prec = np.asarray(curves[key])
            ax.plot(curves["recall"], prec, label=f"{label}, AP {prec.mean():.3f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
               title=f"{title} (maxDets {curves.get('max_dets', '?')})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(out_path)
    finally:
        plt.close(fig)
    return out_path
