"""InputSize: the three ways a size is written read to one (H, W), refused with one message."""
from __future__ import annotations

import pytest

from flowdet.core.size import InputSize, valid_side
from flowdet.errors import InputError


@pytest.mark.parametrize("value, hw", [(640, (640, 640)), ("960x544", (544, 960)), ([544, 960], (544, 960)),
                                       ((544, 960), (544, 960)), (InputSize(64, 32), (64, 32)), (" 960 × 544 ", (544, 960))])
def test_every_form_reads_to_height_width(value, hw):
    size = InputSize.parse(value)
    assert size == hw and (size.h, size.w) == hw
    assert InputSize.parse(size.to_flag()) == size


def test_flag_form_is_square_or_width_x_height():
    assert InputSize(640, 640).to_flag() == "640" and InputSize(544, 960).to_flag() == "960x544"


@pytest.mark.parametrize("bad", [[640], "640x", 33, "1e9", [640.5, 640], {"h": 640}])
def test_one_message_names_the_field(bad):
    with pytest.raises(InputError) as e:
        InputSize.parse(bad, "model.img_size")
    assert "model.img_size" in str(e.value) and "is not an input size" in str(e.value)


def test_side_rule():
    assert valid_side(32) and valid_side(8192) and not valid_side(16) and not valid_side(8224) and not valid_side(100)
