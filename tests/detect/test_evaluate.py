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
