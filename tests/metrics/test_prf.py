"""P/R/F1 against the score threshold: a hand-checked case."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flowdet.data.coco import ImageRecord
from flowdet.metrics.prf import prf_png, prf_sweep


def test_prf_sweep_counts_tp_fp_fn_and_finds_the_best_threshold(tmp_path):
    rec = ImageRecord(1, Path("a.jpg"), "a.jpg", 100, 100, np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32),
                      np.array([0, 0]), np.array([False, False]), np.array([1, 2]))
    results = [{"image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10], "score": 0.9},      # TP
               {"image_id": 1, "category_id": 5, "bbox": [80, 80, 10, 10], "score": 0.6},    # FP
               {"image_id": 1, "category_id": 5, "bbox": [50, 50, 10, 10], "score": 0.3}]    # TP (low score)
    s = prf_sweep([rec], results, [5])
    assert s["gt"] == 2 and s["best_f1"] > 0.79  # all three kept: P 2/3, R 1 → F1 0.8
    assert s["best_conf"] <= 0.3 and (s["tp"], s["fp"], s["fn"]) == (2, 1, 0)
    i = 50  # conf 0.5: one TP, one FP, one miss
    assert s["precision"][i] == 0.5 and s["recall"][i] == 0.5
    assert prf_png(s, tmp_path / "prf.png").stat().st_size > 0


def test_the_best_threshold_is_a_detection_score_not_a_grid_step():
    # Before: a 0.01 grid; the best F1 came from keeping scores ≥ 0.012 and eval said "conf 0.00".
    rec = ImageRecord(1, Path("a.jpg"), "a.jpg", 100, 100, np.array([[0, 0, 10, 10]], np.float32),
                      np.array([0]), np.array([False]), np.array([1]))
    results = [{"image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10], "score": 0.0123},     # TP
               *({"image_id": 1, "category_id": 5, "bbox": [60, 60, 10, 10], "score": 0.004 + i * 1e-4}
                 for i in range(20))]                                                          # FP below it
    s = prf_sweep([rec], results, [5])
    assert s["best_conf"] == 0.0123 and s["best_f1"] == 1.0 and (s["tp"], s["fp"], s["fn"]) == (1, 0, 0)
    assert s["precision_at_best"] == 1.0 and s["recall_at_best"] == 1.0
