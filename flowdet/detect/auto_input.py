"""`flowdet train` without ``--size`` / ``--img-size``: the model size and a rectangular input picked
from the training data, stated in one line and recorded in the run's config.yaml.

Why a rule instead of a fixed default: the old defaults (nano at 640×640) were the worst row measured
on real river frames. Grogol-960 (16:9 bridge frames, objects ~19 px median at 960 px), 30 epochs on
CPU, AP on a bridge the training never saw (docs/benchmarks.md, "Accuracy"):

    nano    640×640  0.123–0.141     nano-d  832×480  0.229–0.252 (five runs)
    nano    960×544  0.192           nano-dh 960×544  0.233
    nano   1088×608  0.186           nano-dl 896×512  0.239

1. **Model: nano-d** (nano's widths, dense 3×3 convs). Dense convs learn faster from scratch than
   depthwise ones and run at a higher FLOP rate on CPUs, so nano-d at a given latency beats nano at
   a larger input (0.24 vs 0.19). With ``--backbone`` the backbone's own size is taken instead.
2. **Input: the frames' own aspect at a pixel budget.** Letterboxing a 16:9 frame into a square
   spends 44 % of the input on padding; the frame's aspect (median W/H of the training images) at
   the budget's pixel count shows every object larger for the same compute. The budget is the
   input that measured best for the size at about YOLO26n-640's CPU latency: 832×480 px for the
   dense sizes, 960×544 for the depthwise nano. Sides are multiples of 32 (the largest stride);
   the input is never larger than the frames themselves (rounded up to 32): upsampling adds
   compute, not detail.
3. **Objects** (the labels' median box side at the chosen input) decide nothing by themselves —
   no measurement here says what a different budget would buy — but a median under 8 px gets a
   note: such objects need more input pixels (or ``--p2``), at a latency cost.

An explicit flag always wins; a square input given by hand on non-square frames gets a one-line note.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowdet.detect.config import AUTO, DetectConfig

AUTO_MODEL_SIZE = "nano-d"
DEFAULT_BUDGET = (480, 832)  # (H, W) whose pixel count is the budget
PIXEL_BUDGET = {"nano": (544, 960)}  # sizes whose measured best input differs from DEFAULT_BUDGET
STRIDE = 32
TINY_OBJECT_PX = 8.0


@dataclass(frozen=True)
class InputChoice:
    size: str
    hw: tuple[int, int]
    reason: str
    notes: tuple[str, ...] = ()

    @property
    def img_size(self) -> str:
        return f"{self.hw[1]}x{self.hw[0]}"


def is_auto(cfg: DetectConfig) -> bool:
    return cfg.model.size == AUTO or str(cfg.train.img_size).strip().lower() == AUTO


def _round32(v: float) -> int:
    return max(STRIDE, int(round(v / STRIDE)) * STRIDE)


def rect_input(frame_hw: tuple[float, float], budget_hw: tuple[int, int]) -> tuple[int, int]:
    """(H, W) with the frame's aspect and about ``budget_hw``'s pixel count, multiples of 32, no
    larger than the frame rounded up to 32."""
    fh, fw = float(frame_hw[0]), float(frame_hw[1])
    aspect = fw / fh
    pixels = budget_hw[0] * budget_hw[1]
    h = math.sqrt(pixels / aspect)
    cap = (math.ceil(fh / STRIDE) * STRIDE, math.ceil(fw / STRIDE) * STRIDE)
    if h >= fh:  # frames smaller than the budget: their own size, padded up to the stride
        return cap
    hw = _round32(h), _round32(h * aspect)
    return min(hw[0], cap[0]), min(hw[1], cap[1])


def frame_and_object_sizes(records: Sequence) -> tuple[tuple[float, float], float]:
    """Median frame (H, W) and median box side sqrt(w·h) in frame pixels (nan without boxes)."""
    hw = np.array([(r.height, r.width) for r in records], np.float64)
    frame = (float(np.median(hw[:, 0])), float(np.median(hw[:, 1])))
    sides = [np.sqrt(np.clip(r.boxes[:, 2] - r.boxes[:, 0], 0, None) * np.clip(r.boxes[:, 3] - r.boxes[:, 1], 0, None))
             for r in records if len(r.boxes)]
    obj = float(np.median(np.concatenate(sides))) if sides else float("nan")
    return frame, obj


def choose(records: Sequence, size: str = AUTO, img_size: str = AUTO, backbone_size: str | None = None) -> InputChoice:
    """The model size and input for these training records; explicit values pass through."""
    from flowdet.core.size import InputSize

    frame, obj = frame_and_object_sizes(records)
    why = []
    if size == AUTO:
        size = backbone_size or AUTO_MODEL_SIZE
        why.append(f"model {size}" + (" (the backbone's size)" if backbone_size else ""))
    if str(img_size).strip().lower() == AUTO:
        budget = PIXEL_BUDGET.get(size, DEFAULT_BUDGET)
        hw = rect_input(frame, budget)
        why.append(f"input {hw[1]}x{hw[0]} (the frames' {frame[1]:.0f}x{frame[0]:.0f} aspect at {size}'s "
                   f"budget of {budget[1]}x{budget[0]} px, no larger than the frames)")
    else:
        hw = InputSize.parse(img_size, "train.img_size")
    notes = []
    scale = min(hw[0] / frame[0], hw[1] / frame[1])
    if math.isfinite(obj):
        why.append(f"median object {obj * scale:.0f} px at {hw[1]}x{hw[0]}")
        if obj * scale < TINY_OBJECT_PX:
            notes.append(f"the median object is {obj * scale:.1f} px at {hw[1]}x{hw[0]}: objects this small "
                         "need more input pixels (a larger --img-size) or --p2, at a latency cost")
    frame_aspect, input_aspect = frame[1] / frame[0], hw[1] / hw[0]
    if str(img_size).strip().lower() != AUTO and abs(math.log(input_aspect / frame_aspect)) > math.log(1.2):
        auto_hw = rect_input(frame, PIXEL_BUDGET.get(size, DEFAULT_BUDGET))
        notes.append(f"--img-size {hw[1]}x{hw[0]} on {frame[1]:.0f}x{frame[0]:.0f} frames letterboxes "
                     f"{100 * (1 - (frame[0] * scale) * (frame[1] * scale) / (hw[0] * hw[1])):.0f} % of the input "
                     f"as padding; the frames' own aspect at this budget is {auto_hw[1]}x{auto_hw[0]} "
                     "(leave --img-size out to get it)")
    return InputChoice(size, hw, "; ".join(why), tuple(notes))


def resolve(cfg: DetectConfig, records: Sequence, backbone_size: str | None = None) -> tuple[DetectConfig, InputChoice]:
    """``cfg`` with model.size / train.img_size made concrete for ``records``."""
    c = choose(records, cfg.model.size, cfg.train.img_size, backbone_size)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, size=c.size),
                              train=dataclasses.replace(cfg.train, img_size=c.img_size))
    return cfg, c
