"""Precision / recall of pseudo-labels against held-back labels, on a case counted by hand."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from flowdet.core.detections import Detections
from flowdet.errors import DataError
from flowdet.pseudo.score import PseudoScorer
from flowdet.pseudo.track_filter import DETECTION, GAP, TRACK, PseudoBoxes

A, B, C, D = [10, 10, 20, 20], [40, 40, 52, 52], [70, 10, 80, 20], [5, 60, 45, 90]


def _labels(tmp_path):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((100, 100, 3), np.uint8))
    anns = [(1, A, 0), (1, B, 0), (2, C, 0), (2, D, 1)]   # D: a crowd label (neither TP nor FP)
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100},
                       {"id": 2, "file_name": "b.png", "width": 100, "height": 100}],
            "annotations": [{"id": i + 1, "image_id": im, "category_id": 1, "iscrowd": crowd,
                             "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]} for i, (im, b, crowd) in enumerate(anns)],
            "categories": [{"id": 1, "name": "bottle"}]}
    (tmp_path / "labels.json").write_text(json.dumps(data))
    return tmp_path / "labels.json"


def _det(rows) -> Detections:
    return Detections(np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
                      np.array([r[1] for r in rows], np.float32), np.zeros(len(rows), np.int64))


def _pseudo(rows) -> PseudoBoxes:
    """rows: (box, score, origin, ignore)."""
    return PseudoBoxes(np.array([r[0] for r in rows], np.float32).reshape(-1, 4), np.array([r[1] for r in rows]),
                       np.zeros(len(rows), np.int64), np.array([1 if r[2] != DETECTION else 0 for r in rows]),
                       np.array([r[2] for r in rows], object), np.array([r[3] for r in rows], bool))


def test_precision_recall_before_and_after(tmp_path):
    labels = _labels(tmp_path)
    s = PseudoScorer(labels)
    key_a, key_b = ((str((tmp_path / "a.png").resolve()), None),), ((str((tmp_path / "b.png").resolve()), None),)
    fp = [60, 60, 70, 70]
    # image a: A found (0.9), a false box (0.7), B only at 0.4 (under conf 0.5)
    assert s.add(key_a, _det([(A, 0.9), (fp, 0.7), (B, 0.4)]),
                 _pseudo([(A, 0.9, TRACK, False), (B, 0.4, TRACK, False), (fp, 0.7, DETECTION, True)]), 0.5)
    # image b: C at 0.6, a box on the crowd label D (0.8); after the filter C comes from a gap fill
    assert s.add(key_b, _det([(C, 0.6), (D, 0.8)]), _pseudo([(C, 0.6, GAP, False)]), 0.5)
    assert not s.add(((str(tmp_path / "other.png"), None),), _det([]), _pseudo([]), 0.5)
    r = s.result()
    assert r["images"] == 2 and r["gt_boxes"] == 3 and r["class_agnostic"]
    assert (r["before"]["tp"], r["before"]["fp"], r["before"]["fn"]) == (2, 1, 1)        # A, C | fp | B
    assert r["before"]["precision"] == pytest.approx(2 / 3, abs=1e-4) and r["before"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert (r["after_track"]["tp"], r["after_track"]["fp"], r["after_track"]["fn"]) == (2, 0, 1)   # A, B | - | C
    assert (r["after"]["tp"], r["after"]["fp"], r["after"]["fn"]) == (3, 0, 0)
    assert r["after"]["precision"] == 1.0 and r["after"]["recall"] == 1.0
    assert r["ignore"] == {"regions": 1, "on_objects": 0, "missed_objects_under_ignore": 0}


def test_an_ignore_region_on_a_missed_object_is_counted(tmp_path):
    s = PseudoScorer(_labels(tmp_path))
    key_b = ((str((tmp_path / "b.png").resolve()), None),)
    s.add(key_b, _det([(C, 0.3)]), _pseudo([(C, 0.3, DETECTION, True)]), 0.5)
    r = s.result()
    assert r["after"]["fn"] == 1 and r["ignore"] == {"regions": 1, "on_objects": 1, "missed_objects_under_ignore": 1}


def test_labels_of_other_images_are_one_line(tmp_path):
    s = PseudoScorer(_labels(tmp_path))
    assert s.covers([(str((tmp_path / "a.png").resolve()), None)])
    assert not s.covers([(str(tmp_path / "elsewhere.png"), None)])
    with pytest.raises(DataError, match="none of its images"):
        s.result()


def test_frames_without_time_order_are_said_to_be_unfiltered(tmp_path):
    from flowdet.pseudo.score import format_score

    s = PseudoScorer(_labels(tmp_path))
    key_a = ((str((tmp_path / "a.png").resolve()), None),)
    s.add(key_a, _det([(A, 0.9)]), _pseudo([(A, 0.9, DETECTION, False)]), 0.5, tracked=False)
    r = s.result()
    assert r["tracked_images"] == 0 and r["after"]["tp"] == r["before"]["tp"] == 1
    lines = format_score(r, 0.5)
    assert "track filter did not run" in lines[0] and not any("after, track" in ln for ln in lines)
