"""Sliced inference: window layout, merging (NMS / WBF), mapping back, batching through ONNX."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from flowdet.core.detections import Detections
from flowdet.runtime.predict.tiles import TiledPredictor, merge, tile_windows, weighted_box_fusion


@pytest.mark.parametrize("h, w, tile, overlap", [(1080, 1920, 640, 0.2), (720, 1280, 640, 0.25), (480, 640, 320, 0.1)])
def test_windows_cover_with_overlap(h, w, tile, overlap):
    wins = tile_windows(h, w, tile, overlap)
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in wins:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 == min(tile, w) and y1 - y0 == min(tile, h)
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({x0 for x0, *_ in wins})
    assert all(b - a <= tile * (1 - overlap) + 1 for a, b in zip(xs, xs[1:]))  # neighbours share ≥ overlap


def test_window_count_1080p():
    assert len(tile_windows(1080, 1920, 640, 0.2)) == 4 * 2  # x: 0,512,1024,1280; y: 0,440
    assert tile_windows(300, 200, 640) == [(0, 0, 200, 300)]
    with pytest.raises(ValueError):
        tile_windows(100, 100, 640, overlap=1.0)


def _det(boxes, scores, cls=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.asarray(scores, np.float32),
                      np.asarray(cls if cls is not None else [0] * len(boxes), np.int64))


def test_merge_nms_and_wbf():
    a = _det([[10, 10, 20, 20], [100, 100, 110, 110]], [0.9, 0.5])
    b = _det([[11, 11, 21, 21], [300, 300, 310, 310]], [0.6, 0.7], [0, 0])
    c = _det([[10, 10, 20, 20]], [0.8], [1])  # same place, other class: never merged
    m = merge([a, b, c], iou=0.5)
    assert len(m) == 4 and m.scores[0] == pytest.approx(0.9)
    w = merge([a, b, c], iou=0.5, method="wbf")
    assert len(w) == 4
    fused = w.boxes[(w.class_ids == 0) & np.isclose(w.scores, 0.9)][0]
    np.testing.assert_allclose(fused, (np.array([10, 10, 20, 20]) * 0.9 + np.array([11, 11, 21, 21]) * 0.6) / 1.5,
                               atol=1e-4)
    assert len(merge([Detections(), Detections()])) == 0
    assert len(weighted_box_fusion(Detections(), 0.5)) == 0


class _FakePredictor:
    """Detects every pure-white blob: returns its box in the crop's pixels."""

    names, img_size = ["plastic"], (320, 320)

    def __init__(self):
        self.calls: list[int] = []

    def predict(self, images, conf=0.25, iou=0.65):
        self.calls.append(len(images))
        out = []
        for im in images:
            mask = (im == 255).all(axis=2).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            boxes = [[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:n]]
            scores = [0.9] * len(boxes)
            out.append(_det(boxes, scores))
        return out


def test_tiled_predictor_maps_back_and_dedups():
    img = np.zeros((720, 1280, 3), np.uint8)
    targets = [(100, 100), (630, 200), (1200, 650)]  # (630, 200) lies in the overlap of two tiles
    for x, y in targets:
        img[y:y + 8, x:x + 8] = 255
    base = _FakePredictor()
    tp = TiledPredictor(base, tile=640, overlap=0.25)
    det = tp.predict([img, img])
    assert base.calls == [2 * (1 + len(tp.windows(720, 1280)))]  # one call: all crops of all images
    for d in det:
        got = sorted(tuple(int(v) for v in b[:2]) for b in d.boxes)
        assert got == sorted(targets)  # each once, in frame pixels
    assert tp.last_views == 2 * (1 + len(tp.windows(720, 1280)))


def test_cut_objects_dropped_at_inner_tile_edges():
    base = _FakePredictor()
    tp = TiledPredictor(base, tile=640, overlap=0.25, full_frame=True)
    img = np.zeros((720, 1280, 3), np.uint8)
    x0 = tp.windows(720, 1280)[1][0]  # left edge of the second tile column
    img[300:308, x0 - 4:x0 + 4] = 255  # straddles that edge: the second tile sees a cut-off half
    d = tp.predict([img])[0]
    assert len(d) == 1 and d.boxes[0, 0] == x0 - 4 and d.boxes[0, 2] == x0 + 4


def test_tiles_batch_through_dynamic_onnx(nano_onnx):
    from flowdet.export.parity import synthetic_images
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(nano_onnx, threads=1, max_batch=4)
    runs = []
    real_run = p.session.run
    p.session = type("S", (), {"run": lambda self, *a, **k: (runs.append(a[1]["images"].shape[0]), real_run(*a, **k))[1]})()
    tp = TiledPredictor(p, tile=320, overlap=0.2)
    img = synthetic_images(1, (480, 640))[0]
    d = tp.predict([img], conf=0.3)[0]
    views = 1 + len(tp.windows(480, 640))
    assert runs == [4] * (views // 4) + ([views % 4] if views % 4 else [])  # batched, not one by one
    assert len(d) > 0 and d.boxes[:, 2].max() <= 640 and d.boxes[:, 3].max() <= 480


def test_tiled_predictor_keeps_the_models_category_ids(nano_onnx):
    """COCO results from a tiled run must name the model's category ids (regression: AP was 0)."""
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    base = OnnxPredictor(nano_onnx)
    assert TiledPredictor(base, 160).cat_ids == base.cat_ids


def test_a_rectangular_tile_as_the_docstring_offers():
    """mypy's finding: TiledPredictor(p, (640, 960)) raised TypeError (the tuple went in as a height)."""
    base = _FakePredictor()
    tp = TiledPredictor(base, (320, 480), overlap=0.25)
    assert tp.tile == (320, 480)
    img = np.zeros((720, 1280, 3), np.uint8)
    img[100:108, 900:910] = 255
    d = tp.predict([img])[0]
    assert all(x1 - x0 <= 480 and y1 - y0 <= 320 for x0, y0, x1, y1 in tp.windows(720, 1280))
    np.testing.assert_allclose(d.boxes, [[900, 100, 910, 108]])


def test_tile_count_per_frame_is_capped_with_one_line():
    """`--tile 32 --overlap 0.95` on a 320x192 frame: 11,745 crops, each letterboxed to the model input
    (3 GB in 6 s, then the OOM killer). Now one error naming the limit, before any crop is run."""
    from flowdet.errors import InputError
    from flowdet.runtime.predict.tiles import MAX_TILES

    base = _FakePredictor()
    tp = TiledPredictor(base, 32, overlap=0.95)
    with pytest.raises(InputError, match=f"11745 tiles of a 320x192 frame, over the limit of {MAX_TILES}"):
        tp.predict([np.zeros((192, 320, 3), np.uint8)])
    assert base.calls == []


def test_crops_go_to_the_backend_in_bounded_calls():
    from flowdet.runtime.predict.tiles import CROPS_PER_CALL

    base = _FakePredictor()
    tp = TiledPredictor(base, 96, overlap=0.5)
    n = 1 + len(tp.windows(480, 640))  # 117 crops
    assert n > CROPS_PER_CALL
    tp.predict([np.zeros((480, 640, 3), np.uint8)])
    assert sum(base.calls) == n and max(base.calls) <= CROPS_PER_CALL
