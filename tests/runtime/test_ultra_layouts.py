"""ultralytics ONNX exports on flowdet's runtime: layout detection, decoding, NMS, letterbox unmapping.

The graphs are built here with ``onnx.helper`` (CI has no ultralytics): constant boxes and scores
in ultralytics' layouts, the scores multiplied by the max of input channel 0 — 1.0 only when the
runtime feeds RGB scaled to 0–1 (a pure red image), so a wrong colour order or range shows up
as wrong scores. benchmarks/ultra_onnx_parity.py checks real YOLO26n exports against ultralytics.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from no_torch import run_without_torch

from flowdet.errors import ModelFileError
from flowdet.runtime.predict.layouts import FLOWDET, ULTRA_E2E, ULTRA_RAW, detect_layout, letterbox_centered

H = W = 64
# Raw anchors (cx, cy, w, h in input pixels) and per-class scores, nc = 2, N = 6 anchors: [1, 6, 6]
# is also the shape where only the metadata (end2end False) tells raw from end-to-end.
RAW_BOXES = [(32, 32, 16, 8), (33, 32, 16, 8), (33, 32, 16, 8), (10, 20, 4, 4), (2, 20, 8, 8), (50, 50, 4, 4)]
RAW_SCORES = [(0.9, 0.1), (0.8, 0.05), (0.2, 0.7), (0.0003, 0.0005), (0.6, 0.0), (0.0, 0.0)]
# End-to-end rows (x1, y1, x2, y2, score, class), ranked as the graph's top-k leaves them, nc = 3.
E2E_ROWS = [(24, 28, 40, 36, 0.9, 2), (24, 28, 40, 36, 0.8, 2), (0, 16, 64, 48, 0.5, 0), (1, 1, 2, 2, 0.0005, 1),
            (0, 0, 0, 0, 0.0, 0)]


def ultra_props(nc: int, end2end: bool = False, task: str = "detect", size: int = H) -> dict[str, str]:
    """metadata_props as ultralytics 8.4 writes them: str() of Python values."""
    return {"author": "Ultralytics", "version": "8.4.190", "stride": "32", "task": task, "batch": "1",
            "imgsz": str([size, size]), "names": str({i: f"c{i}" for i in range(nc)}),
            "args": str({"batch": 1, "half": False, "dynamic": False, "nms": False if end2end else None}),
            "end2end": str(end2end)}


def ultra_graph(path: Path, layout: str, props: dict[str, str] | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    init = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
            (("starts", [0]), ("ends", [1]), ("axes", [1]), ("shape3", [1, 1, 1]))]
    nodes = [helper.make_node("Slice", ["images", "starts", "ends", "axes"], ["red"]),
             helper.make_node("ReduceMax", ["red"], ["rmax4"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Reshape", ["rmax4", "shape3"], ["rmax"])]
    if layout == ULTRA_RAW:
        boxes = np.array(RAW_BOXES, np.float32).T[None]  # [1, 4, N]
        scores = np.array(RAW_SCORES, np.float32).T[None]  # [1, nc, N]
        init += [numpy_helper.from_array(boxes, "boxes_c"), numpy_helper.from_array(scores, "scores_c")]
        nodes += [helper.make_node("Mul", ["scores_c", "rmax"], ["scores"]),
                  helper.make_node("Concat", ["boxes_c", "scores"], ["output0"], axis=1)]
        shape = [1, 4 + scores.shape[1], boxes.shape[2]]
    else:
        rows = np.array(E2E_ROWS, np.float32)[None]
        init += [numpy_helper.from_array(rows[..., :4], "boxes_c"), numpy_helper.from_array(rows[..., 4:5], "score_c"),
                 numpy_helper.from_array(rows[..., 5:], "cls_c")]
        nodes += [helper.make_node("Mul", ["score_c", "rmax"], ["score"]),
                  helper.make_node("Concat", ["boxes_c", "score", "cls_c"], ["output0"], axis=2)]
        shape = list(rows.shape)
    graph = helper.make_graph(nodes, "ultra", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, H, W])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, shape)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (props if props is not None else ultra_props(2 if layout == ULTRA_RAW else 3,
                                                             end2end=layout == ULTRA_E2E)).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def red(h: int = 100, w: int = 200) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 2] = 255  # BGR: pure red
    return img


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ultra")
    return {k: ultra_graph(d / f"{k}.onnx", k) for k in (ULTRA_RAW, ULTRA_E2E)}


def test_raw_layout_nms_and_unmapping(graphs):
    """200x100 into 64x64: r = 0.32, centred, 16 px pad on top. Class-aware NMS drops the shifted
    duplicate of class 0 and keeps the class-1 box on top of it; the box over the pad is clipped."""
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(graphs[ULTRA_RAW], threads=1)
    assert p.layout.kind == ULTRA_RAW and p.names == ["c0", "c1"] and p.img_size == (H, W)
    a, b = p.predict([red(), red(200, 400)], conf=0.001, iou=0.65)
    np.testing.assert_allclose(a.scores, [0.9, 0.7, 0.6], atol=1e-6)  # 1.0 × pattern: RGB, 0–1 input
    assert a.class_ids.tolist() == [0, 1, 0]
    np.testing.assert_allclose(a.boxes, [[75, 37.5, 125, 62.5], [78.125, 37.5, 128.125, 62.5], [0, 0, 18.75, 25]],
                               atol=1e-3)
    np.testing.assert_allclose(b.boxes, a.boxes * 2, atol=1e-3)  # the same input tensor, twice the pixels
    assert len(p.predict([red()], conf=0.65)[0]) == 2 and p.predict([]) == []


def test_e2e_layout_no_nms_ranked_max_det(graphs):
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(graphs[ULTRA_E2E], threads=1)
    assert p.layout.kind == ULTRA_E2E and len(p.names) == 3
    d = p.predict([red()], conf=0.001)[0]
    np.testing.assert_allclose(d.scores, [0.9, 0.8, 0.5], atol=1e-6)  # the duplicate stays: the graph did NMS
    assert d.class_ids.tolist() == [2, 2, 0]
    np.testing.assert_allclose(d.boxes[0], [75, 37.5, 125, 62.5], atol=1e-3)
    np.testing.assert_allclose(d.boxes[2], [0, 0, 200, 100], atol=1e-3)  # (0,16)-(64,48) is the whole image
    assert len(p.predict([red()], conf=0.001, max_det=2)[0]) == 2


def test_detect_layout_from_shapes_and_metadata():
    assert detect_layout({"output0": [1, 84, 8400]}, ultra_props(80), "m.onnx").kind == ULTRA_RAW
    assert detect_layout({"output0": [1, 300, 6]}, ultra_props(80, end2end=True), "m.onnx").kind == ULTRA_E2E
    # An older export without the end2end key: the shape alone decides.
    props = {k: v for k, v in ultra_props(80).items() if k != "end2end"}
    assert detect_layout({"output0": [1, 300, 6]}, props, "m.onnx").kind == ULTRA_E2E
    # nc = 2: [1, 6, 6] fits both; the metadata decides.
    assert detect_layout({"output0": [1, 6, 6]}, ultra_props(2), "m.onnx").kind == ULTRA_RAW
    assert detect_layout({"output0": [1, 6, 6]}, ultra_props(2, end2end=True), "m.onnx").kind == ULTRA_E2E
    assert detect_layout({"output0": ["batch", None, "anchors"]}, ultra_props(80), "m.onnx").kind == ULTRA_RAW
    lay = detect_layout({"output0": [1, 84, 8400]}, ultra_props(80, size=640), "m.onnx", input_shape=[1, 3, 640, 640])
    assert lay.meta.img_size == (640, 640) and lay.meta.names[79] == "c79" and lay.output == "output0"
    with pytest.raises(ModelFileError, match=r"m.onnx.*unknown output layout.*output0 \[1, 85, 8400\]"):
        detect_layout({"output0": [1, 85, 8400]}, ultra_props(80), "m.onnx")
    with pytest.raises(ModelFileError, match="'segment' model"):
        detect_layout({"output0": [1, 116, 8400], "output1": [1, 32, 160, 160]}, ultra_props(80, task="segment"), "m.onnx")
    with pytest.raises(ModelFileError, match=r"imgsz \[64, 64\] differs from the graph input \[320, 320\]"):
        detect_layout({"output0": [1, 6, 2100]}, ultra_props(2), "m.onnx", input_shape=[1, 3, 320, 320])
    with pytest.raises(ModelFileError, match="no flowdet metadata"):  # flowdet's outputs keep flowdet's errors
        detect_layout({"boxes": [1, 10, 4], "scores": [1, 10, 1]}, {}, "m.onnx")


def test_unknown_graph_is_one_clear_error(tmp_path):
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    f = ultra_graph(tmp_path / "foreign.onnx", ULTRA_RAW, props={})
    with pytest.raises(ModelFileError) as e:
        OnnxPredictor(f)
    msg = str(e.value)
    assert "foreign.onnx" in msg and "output0 [1, 6, 6]" in msg and "ultralytics" in msg and "\n" not in msg


def test_letterbox_centered_follows_ultralytics_rounding():
    """97 rows at r = 0.32 → 31 rows; 33 px of padding: 16 on top, the odd one at the bottom."""
    img = np.full((97, 200, 3), 7, np.uint8)
    canvas, tf = letterbox_centered(img, (H, W))
    rows = np.flatnonzero((canvas[:, :, 0] == 7).all(axis=1))
    assert rows[0] == 16 and rows[-1] == 46 and (canvas[47:] == 114).all() and (canvas[:16] == 114).all()
    assert (tf.pad_x, tf.pad_y) == (0, 16) and tf.gain_x == pytest.approx(0.32) and tf.gain_y == pytest.approx(31 / 97)
    up, tf2 = letterbox_centered(np.full((10, 20, 3), 7, np.uint8), (H, W))  # upscales, like predict
    assert tf2.gain_x == pytest.approx(3.2) and tf2.pad_y == 16


def test_eval_scores_an_ultralytics_onnx(graphs, tmp_path):
    """`flowdet eval` path (evaluate + load_predictor) on the raw graph: GT = the decoded boxes → AP 1."""
    from flowdet.detect.evaluate import evaluate
    from flowdet.runtime import load_predictor

    cv2.imwrite(str(tmp_path / "a.png"), red())
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}],
          "categories": [{"id": 1, "name": "c0"}, {"id": 2, "name": "c1"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                          for i, (c, b) in enumerate([(1, [75, 37.5, 50, 25]), (2, [78.125, 37.5, 50, 25]),
                                                      (1, [0, 0, 18.75, 25])])]}
    (tmp_path / "val.json").write_text(json.dumps(gt))
    stats = evaluate(load_predictor(str(graphs[ULTRA_RAW]), threads=1), tmp_path / "val.json", images=tmp_path,
                     progress=False, verbose=False)
    assert stats["AP"] == pytest.approx(1.0) and stats["detections"] == 3


def test_ultralytics_layouts_run_without_torch(graphs, small_video, tmp_path):
    """predict, tiles and the stream on both layouts with torch unimportable."""
    r = run_without_torch(f"""
        import json, sys, numpy as np
        from flowdet.runtime import load_predictor
        from flowdet.runtime.predict.tiles import TiledPredictor
        from flowdet.runtime.stream.stream import run_stream
        out = {{}}
        for kind, path in {({k: str(v) for k, v in graphs.items()})!r}.items():
            p = load_predictor(path, threads=1)
            img = np.zeros((100, 200, 3), np.uint8); img[..., 2] = 255
            d = p.predict([img], conf=0.3)[0]
            t = TiledPredictor(p, tile=64, overlap=0.25).predict([img], conf=0.3)[0]
            s = run_stream(p, {str(small_video)!r}, jsonl={str(tmp_path)!r} + f"/{{kind}}.jsonl", max_frames=3)
            out[kind] = [p.layout.kind, len(d), len(t), s["frames"]]
        out["torch"] = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print(json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.pop("torch") == []
    for kind, (got, n, tiled, frames) in out.items():
        assert got == kind and n >= 2 and tiled >= 1 and frames == 3


def test_flowdet_layout_is_still_the_default(nano_onnx):
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(nano_onnx, threads=1)
    assert p.layout is None and p.run_outputs == ["boxes", "scores"]
    assert detect_layout({"boxes": [1, 10, 4], "scores": [1, 10, 1]}, p.meta.to_props(), "m").kind == FLOWDET


def test_ultralytics_layouts_on_openvino(request, graphs):
    """`--backend openvino` reads the same two layouts and decodes them as onnxruntime does."""
    pytest.importorskip("openvino")
    from openvino_child import ran_in_child

    if ran_in_child(__file__, "test_ultralytics_layouts_on_openvino"):
        return
    from flowdet.runtime import load_predictor

    for kind, path in graphs.items():
        ref = load_predictor(str(path), threads=1).predict([red()], conf=0.001)[0]
        ov = load_predictor(str(path), backend="openvino", threads=1)
        assert ov.layout.kind == kind and "layout=" in repr(ov)
        got = ov.predict([red()], conf=0.001)[0]
        assert len(got) == len(ref) >= 3
        np.testing.assert_allclose(got.scores, ref.scores, atol=1e-6)
        np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-3)
        assert got.class_ids.tolist() == ref.class_ids.tolist()
