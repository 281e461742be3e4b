"""Detections, the one results object: selection keeps the three arrays aligned, merge concatenates."""
from __future__ import annotations

import numpy as np
import pytest

from flowdet.core.detections import Detections


def _three() -> Detections:
    return Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 45]], np.float32),
                      np.array([0.9, 0.5, 0.2], np.float32), np.array([0, 1, 0], np.int64), invalid=2)


def test_boolean_mask_int_array_and_slice_select_aligned_rows():
    d = _three()
    low = d[d.scores < 0.6]
    assert len(low) == 2 and low.class_ids.tolist() == [1, 0] and low.boxes[1].tolist() == [30, 30, 40, 45]
    assert d[[2, 0]].scores.tolist() == pytest.approx([0.2, 0.9])
    assert d[np.array([], np.int64)].boxes.shape == (0, 4)
    assert d[1:].scores.tolist() == pytest.approx([0.5, 0.2])
    assert low.invalid == 2  # a count about the image, not about the kept boxes


def test_one_index_is_a_detections_of_one():
    d = _three()
    one = d[-1]
    assert isinstance(one, Detections) and len(one) == 1 and one.boxes.shape == (1, 4)
    assert one.boxes[0].tolist() == [30, 30, 40, 45] and d[0].scores.tolist() == pytest.approx([0.9])
    with pytest.raises(IndexError):
        d[3]
    with pytest.raises(IndexError):
        d[-4]


def test_merge_concatenates_in_order_and_sums_invalid():
    d = _three()
    m = Detections.merge([d[:1], Detections.empty(), d[2:]])
    assert len(m) == 2 and m.scores.tolist() == pytest.approx([0.9, 0.2]) and m.invalid == 4
    assert m.boxes.dtype == np.float32 and m.class_ids.dtype == np.int64
    assert len(Detections.merge([])) == 0 and Detections.empty().boxes.shape == (0, 4)


def test_to_coco_leaves_out_unmapped_classes():
    rows = _three().to_coco(7, cat_ids=[3, None])
    assert [r["category_id"] for r in rows] == [3, 3] and rows[0]["bbox"] == [0.0, 0.0, 10.0, 10.0]
