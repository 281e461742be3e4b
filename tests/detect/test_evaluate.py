"""evaluate's own argument checks (the scoring itself: tests/detect/test_predict.py, tests/metrics)."""
from __future__ import annotations

import pytest

from flowdet.detect.evaluate import evaluate
from flowdet.errors import InputError


def test_an_unknown_dont_care_rule_is_an_input_error_naming_the_choices():
    """ruff's F821 found the name InputError undefined here: this raised NameError instead."""
    with pytest.raises(InputError) as e:
        evaluate(None, "unused.json", dont_care="bogus")  # refused before anything is read
    assert "--dont-care" in str(e.value) and "iscrowd" in str(e.value)


def test_a_model_that_matched_no_label_says_so(synth_small, tmp_path, capsys):
    """Issue 34: eval printed "best F1 0.000 at conf 0.000" for a model that found nothing."""
    import json

    import numpy as np

    from flowdet.core.detections import Detections

    class CornerBoxes:
        """A box in the top-left corner of every image, where no label is."""

        img_size = (320, 320)

        def __init__(self, names):
            self.names = names

        def predict(self, images, conf=0.25, iou=0.65):
            return [Detections(np.array([[0, 0, 4, 4]], np.float32), np.array([0.9], np.float32),
                               np.zeros(1, np.int64)) for _ in images]

    ann = synth_small / "annotations.json"
    names = [c["name"] for c in json.loads(ann.read_text())["categories"]]
    stats = evaluate(CornerBoxes(names), ann, synth_small / "images", out_dir=tmp_path / "e", progress=False)
    out = capsys.readouterr().out
    assert stats["best_f1"] == 0
    assert "no prediction matched a label (IoU 0.5) at any score threshold" in out and "best F1 0.000" not in out
    assert (tmp_path / "e" / "prf_curve.png").is_file()
