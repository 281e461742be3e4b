"""The network input size: one type, parsed and checked in one place.

Users write it three ways — ``640``, ``"960x544"`` (W×H, as ultralytics and ffmpeg write sizes) and
``[H, W]`` (configs, checkpoints, model metadata) — and every verb reads it through
:meth:`InputSize.parse`, so each form is refused with the same one line naming the field.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from flowdet.errors import InputError

STRIDE = 32  # the largest feature stride: each side must be a multiple of it
MAX_SIDE = 8192  # a side above this is a typo, not a model (and gigabytes of RAM)


def valid_side(v: int) -> bool:
    """One input side is a multiple of :data:`STRIDE` in [STRIDE, MAX_SIDE]."""
    return STRIDE <= v <= MAX_SIDE and v % STRIDE == 0


class InputSize(NamedTuple):
    """Network input (height, width) in pixels; a tuple, so ``InputSize(544, 960) == (544, 960)``."""

    h: int
    w: int

    @classmethod
    def parse(cls, value: Any, field: str = "--img-size") -> InputSize:
        """``640`` or ``"640"`` → (640, 640); ``"960x544"`` → (544, 960); ``[H, W]`` or an InputSize
        as is. Raises :class:`flowdet.errors.InputError` naming ``field``."""
        def bad(why: str) -> InputError:
            return InputError(f"{value!r} is not an input size: {why} (e.g. 640, or 960x544 = width x height)",
                              field=field)

        parts: list[Any]
        if isinstance(value, bool):
            raise bad("expected a number")
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise bad("expected [H, W]")
            parts = list(value)
        elif isinstance(value, (int, float)):
            parts = [value, value]
        elif isinstance(value, str):
            text = value.strip().lower().replace("×", "x")
            if "x" in text:
                w_s, _, h_s = text.partition("x")
                parts = [h_s.strip(), w_s.strip()]
            else:
                parts = [text, text]
        else:
            raise bad(f"unexpected type {type(value).__name__}")
        sides = []
        for p in parts:
            try:
                f = float(p)
            except (TypeError, ValueError, OverflowError):
                raise bad(f"{p!r} is not a number") from None
            if not math.isfinite(f) or f != int(f):  # NaN, inf or fractional
                raise bad(f"{p!r} is not a whole number")
            sides.append(int(f))
        for s in sides:
            if not valid_side(s):
                raise bad(f"each side must be a multiple of {STRIDE} between {STRIDE} and {MAX_SIDE}, got {s}")
        return cls(sides[0], sides[1])

    def to_flag(self) -> str:
        """"640" when square, else "WxH": the way ``--img-size`` is written."""
        return str(self.h) if self.h == self.w else f"{self.w}x{self.h}"
