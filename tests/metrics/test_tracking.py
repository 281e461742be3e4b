"""IDF1 / HOTA / count decomposition on hand-made cases."""
from __future__ import annotations

import numpy as np
import pytest

from flowdet.metrics.tracking import count_decomposition, count_error_per_interval, hota, idf1


def _seq(ids_per_frame, n=10):
    frames = []
    for k in range(n):
        ids = np.array(ids_per_frame(k), np.int64)
        boxes = np.array([[10 + 40 * i + k, 10, 30 + 40 * i + k, 30] for i in range(len(ids))], float).reshape(-1, 4)
        frames.append((ids, boxes))
    return frames


def test_identical_is_perfect():
    gt = _seq(lambda k: [1, 2])
    assert idf1(gt, gt)["IDF1"] == 1.0
    assert hota(gt, gt)["HOTA"] == pytest.approx(1.0)
    c = count_decomposition(gt, gt)
    assert (c["correct"], c["redundant"], c["false"], c["missed"]) == (2, 0, 0, 0)


def test_id_switch_is_a_redundant_count_and_halves_idf1():
    gt = _seq(lambda k: [1])
    pr = _seq(lambda k: [7] if k < 5 else [8])
    assert idf1(gt, pr)["IDF1"] == pytest.approx(0.5)
    assert hota(gt, pr)["AssA"] < 0.6
    c = count_decomposition(gt, pr)
    assert (c["correct"], c["redundant"], c["missed"]) == (1, 1, 0) and c["count_precision"] == 0.5


def test_false_and_missed():
    gt = _seq(lambda k: [1, 2])
    pr = [(ids[:1], b[:1]) for ids, b in gt]                             # object 2 never tracked
    pr = [(np.append(i, 9), np.vstack([b, [[300, 300, 320, 320]]])) for i, b in pr]   # a false track
    c = count_decomposition(gt, pr)
    assert (c["correct"], c["false"], c["missed"]) == (1, 1, 1)
    assert c["count_recall"] == 0.5 and c["count_precision"] == 0.5


def test_count_error_per_interval():
    r = count_error_per_interval([1, 61, 62], [2, 3, 65], interval_s=60, duration_s=120)
    assert r["gt_per_interval"] == [1, 2] and r["pred_per_interval"] == [2, 1] and r["mae_per_interval"] == 1.0


def test_greedy_fallback_says_so_once(monkeypatch, capsys):
    """Without lap or scipy the scores use the greedy matching, an approximation: one warning says so."""
    import flowdet.metrics.tracking as T
    import flowdet.runtime.track.assignment as A

    monkeypatch.setattr(A, "ASSIGNMENT", "greedy")
    monkeypatch.setattr(T, "_greedy_warned", False)
    gt = _seq(lambda k: [1, 2])
    idf1(gt, gt)
    hota(gt, gt)
    err = capsys.readouterr().err
    assert err.count("greedy matching") == 1 and "pip install lap" in err
