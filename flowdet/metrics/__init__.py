"""Evaluation metrics. pycocotools and matplotlib are imported only when a function needs them."""
from flowdet.metrics.coco_eval import METRICS, coco_evaluate, format_table, pr_curve_png, pr_curves, summarize

__all__ = ["METRICS", "coco_evaluate", "format_table", "pr_curve_png", "pr_curves", "summarize"]
