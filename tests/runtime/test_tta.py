"""FlipPredictor: the mirrored view's boxes come back onto the frame, and the two views merge."""
from __future__ import annotations

import numpy as np
import pytest

from flowdet.core.detections import Detections
from flowdet.runtime.predict.tiles import TiledPredictor
from flowdet.runtime.predict.tta import FlipPredictor, unflip


class BrightBox:
    """Finds the bounding box of the bright pixels of each image; one call per predict, batch recorded."""

    names, cat_ids, img_size = ["x"], [1], (64, 64)

    def __init__(self):
        self.batches: list[int] = []

    def predict(self, images, conf=0.25, iou=0.65):
        self.batches.append(len(images))
        out = []
        for im in images:
            ys, xs = np.nonzero(im[..., 0] > 200)
            if not len(xs):
                out.append(Detections())
                continue
            out.append(Detections(np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32),
                                  np.array([0.8], np.float32), np.zeros(1, np.int64)))
        return out


def test_unflip_maps_mirrored_boxes_back():
    d = unflip(Detections(np.array([[10, 5, 30, 9]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int64)), 100)
    assert d.boxes.tolist() == [[70, 5, 90, 9]]


@pytest.mark.parametrize("merge", ["wbf", "nms"])
def test_flip_finds_the_same_box_in_one_batched_call(merge):
    img = np.zeros((40, 100, 3), np.uint8)
    img[10:20, 5:25] = 255          # off-centre: a wrong unflip would land at x 75..95
    base = BrightBox()
    (d,) = FlipPredictor(base, merge=merge).predict([img])
    assert base.batches == [2]      # the frame and its mirror in one call
    assert len(d) == 1 and d.boxes.tolist() == [[5, 10, 25, 20]] and d.scores[0] == pytest.approx(0.8)


def test_flip_composes_with_tiles():
    img = np.zeros((80, 160, 3), np.uint8)
    img[50:60, 100:110] = 255
    pred = TiledPredictor(FlipPredictor(BrightBox()), 64, overlap=0.25)
    (d,) = pred.predict([img])
    assert len(d) == 1 and np.allclose(d.boxes[0], [100, 50, 110, 60]) and pred.names == ["x"] and pred.cat_ids == [1]
