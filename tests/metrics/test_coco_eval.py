"""COCO evaluation on a tiny hand-made ground truth: perfect, shifted and empty detections."""
from __future__ import annotations

import json

import pytest

from flowdet.metrics import METRICS, coco_evaluate, format_table, pr_curve_png, pr_curves

# Boxes [x, y, w, h]: small (< 32²), medium and large (> 96²) so that every area range is defined.
BOXES = {1: [[10, 10, 12, 10], [100, 50, 20, 20]], 2: [[30, 40, 50, 40]], 3: [[5, 5, 120, 110], [200, 200, 8, 8]]}


def write_gt(path, boxes=BOXES):
    anns = [{"id": i + 1, "image_id": img, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for i, (img, b) in enumerate((img, b) for img, bs in boxes.items() for b in bs)]
    gt = {"images": [{"id": i, "file_name": f"{i}.png", "width": 320, "height": 320} for i in boxes],
          "annotations": anns, "categories": [{"id": 1, "name": "bottle"}]}
    path.write_text(json.dumps(gt))
    return path


def perfect(boxes=BOXES, dx=0.0):
    return [{"image_id": img, "category_id": 1, "bbox": [b[0] + dx, b[1], b[2], b[3]], "score": 0.9}
            for img, bs in boxes.items() for b in bs]


def test_perfect_predictions_score_one(tmp_path):
    stats = coco_evaluate(write_gt(tmp_path / "gt.json"), perfect())
    assert set(stats) == set(METRICS)
    assert stats.pop("AR1") == pytest.approx(3 / 5)  # one detection per image finds 3 of the 5 boxes
    for key, value in stats.items():
        assert value == pytest.approx(1.0), key


def test_shifted_boxes_score_lower(tmp_path):
    gt = write_gt(tmp_path / "gt.json")
    shifted = coco_evaluate(gt, perfect(dx=3.0))
    assert shifted["AP"] < 1.0 and shifted["APs"] < shifted["APl"]
    assert shifted["AP50"] >= shifted["AP75"] >= 0.0


def test_empty_results_give_zeros_not_a_crash(tmp_path):
    stats, E = coco_evaluate(write_gt(tmp_path / "gt.json"), [], return_eval=True)
    assert all(v == 0.0 for v in stats.values()), stats
    assert pr_curve_png(E, tmp_path / "empty_pr.png").exists()


def test_undefined_ranges_are_minus_one_and_shown_as_na(tmp_path):
    small_only = {1: [[10, 10, 12, 10]], 2: [[50, 50, 8, 8]]}
    stats = coco_evaluate(write_gt(tmp_path / "gt.json", small_only), perfect(small_only))
    assert stats["AP"] == pytest.approx(1.0) and stats["APl"] == -1.0 and stats["ARm_1000"] == -1.0
    table = format_table(stats)
    assert "n/a" in table and "COCO standard" in table and "Reference study" in table
    assert len(table.splitlines()) == 2 + 12 + 12


def test_maxdets_layouts_differ_when_detections_exceed_100(tmp_path):
    # 150 boxes in one image: AR@100 is capped at 100/150, AR@300 and AR@1000 are not.
    many = {1: [[2 * i, 2 * (i % 10), 12, 12] for i in range(150)]}
    stats = coco_evaluate(write_gt(tmp_path / "gt.json", many), perfect(many))
    assert stats["AR100"] == pytest.approx(100 / 150, abs=1e-3)
    assert stats["AR300"] == pytest.approx(1.0) and stats["AR1000"] == pytest.approx(1.0)
    assert stats["AP50_1000"] > stats["AP50"]


def test_img_ids_inputs_untouched_and_unknown_ids(tmp_path):
    gt = write_gt(tmp_path / "gt.json")
    results = perfect()
    results[0]["bbox"] = [200, 200, 5, 5]  # image 1 now has a miss
    before = json.dumps(results)
    assert coco_evaluate(gt, results)["AP"] < 1.0
    assert coco_evaluate(gt, results, img_ids=[2, 3])["AP"] == pytest.approx(1.0)
    assert json.dumps(results) == before  # loadRes got copies
    with pytest.raises(ValueError, match="not in the ground truth"):
        coco_evaluate(gt, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}])


def test_pr_curve_from_eval_and_from_dict(tmp_path, capsys):
    stats, E = coco_evaluate(write_gt(tmp_path / "gt.json"), perfect(dx=2.0), return_eval=True)
    assert capsys.readouterr().out == ""  # pycocotools' prints are swallowed
    curves = pr_curves(E)
    assert len(curves["recall"]) == len(curves["precision_50"]) == len(curves["precision_50_95"]) == 101
    assert sum(curves["precision_50_95"]) / 101 == pytest.approx(stats["AP"], abs=1e-6)
    json.dumps(curves)  # storable
    for name, source in (("a.png", E), ("b.png", curves)):
        out = pr_curve_png(source, tmp_path / "plots" / name)
        assert out.exists() and out.stat().st_size > 1000
