"""ONNX export: parity with PyTorch, metadata round trip, dynamic batch, fp16, CLI exits."""
from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli

IMG = 320  # the fixtures' input size


def test_graph_contract(nano_onnx):
    import onnx

    m = onnx.load(str(nano_onnx))
    assert [i.name for i in m.graph.input] == ["images"]
    assert [o.name for o in m.graph.output] == ["boxes", "scores"]
    dims = [[d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in m.graph.output]
    n = sum((IMG // s) ** 2 for s in (8, 16, 32))
    assert dims == [["batch", n, 4], ["batch", n, 1]]  # static N: grids are baked in
    ops = {node.op_type for node in m.graph.node}
    assert "BatchNormalization" not in ops  # fused
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_metadata_round_trip(nano_onnx, nano_ckpt):
    import onnx
    import torch

    from flowdet import __version__
    from flowdet.runtime.predict.metadata import ModelMeta
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    props = {p.key: p.value for p in onnx.load(str(nano_onnx)).metadata_props}
    meta = ModelMeta.from_props(props)
    ckpt = torch.load(nano_ckpt, weights_only=True)
    assert meta.names == ckpt["names"] == ["bottle"]
    assert meta.cat_ids == [1] and meta.img_size == (IMG, IMG) and meta.strides == [8, 16, 32]
    assert meta.model_size == "nano" and meta.dynamic_batch and meta.precision == "fp32"
    assert meta.flowdet_version == __version__
    assert json.loads(props["letterbox"]) == {"align": "top-left", "pad": 114, "color": "BGR", "range": [0, 255],
                                              "layout": "NCHW", "dtype": "float32"}
    assert ModelMeta.from_props(meta.to_props()) == meta
    pred = OnnxPredictor(nano_onnx)
    assert pred.meta == meta and pred.names == ["bottle"] and pred.img_size == (IMG, IMG)


def _frames(grogol_val, n: int):
    """Real frames when ../shared/data is present, else synthetic ones."""
    from flowdet.export.parity_data import ParityFrames, frames_from, synthetic_images

    return frames_from(grogol_val, n) if grogol_val else ParityFrames(synthetic_images(n), "synthetic", "test")


def test_parity_real_images(nano_ckpt, nano_onnx, grogol_val):
    """Outputs within tolerance and the same detections after NMS, on real frames when present."""
    from flowdet.detect.io import model_from_checkpoint
    from flowdet.export.parity import check_parity
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    model, _ = model_from_checkpoint(nano_ckpt)
    rep = check_parity(model.fuse(), OnnxPredictor(nano_onnx), _frames(grogol_val, 3))
    assert rep.ok, rep.line()
    assert rep.scores_max_abs < 1e-3 and rep.boxes_worst < 0.1 and rep.anchors_checked > 0
    assert rep.detections_ref > 0 and rep.detections_unmatched == 0


def test_onnx_predict_matches_torch_predict(nano_ckpt, nano_onnx, grogol_val):
    """Same final detections through the Predictor interface (unfused torch vs onnx)."""
    import cv2
    import torch

    from flowdet.core.letterbox import preprocess_batch
    from flowdet.core.postprocess import postprocess
    from flowdet.detect.io import model_from_checkpoint, torch_predict_arrays
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    images = _frames(grogol_val, 2).images
    images = [cv2.resize(im, (640, 360)) for im in images]
    model, _ = model_from_checkpoint(nano_ckpt)
    batch, ratios = preprocess_batch(images, IMG)
    b, s = torch_predict_arrays(model, torch.from_numpy(batch))
    ref = postprocess(b, s, ratios, [im.shape[:2] for im in images], conf_thr=0.3)
    got = OnnxPredictor(nano_onnx).predict(images, conf=0.3)
    for r, g in zip(ref, got):
        assert len(r) == len(g) > 0
        ro, go = np.lexsort(r.boxes.T[::-1]), np.lexsort(g.boxes.T[::-1])  # order-free: near-tie scores may swap
        np.testing.assert_allclose(r.boxes[ro], g.boxes[go], atol=0.05)
        np.testing.assert_allclose(r.scores[ro], g.scores[go], atol=1e-4)


def test_dynamic_batch_equals_single(nano_onnx):
    from flowdet.core.letterbox import preprocess_batch
    from flowdet.export.parity import synthetic_images
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    pred = OnnxPredictor(nano_onnx, max_batch=2)  # 3 images → chunks of 2 + 1
    assert pred.dynamic_batch
    batch, _ = preprocess_batch(synthetic_images(3, (240, 320)), IMG)
    b3, s3 = pred.infer(batch)
    for i in range(3):
        b1, s1 = pred.infer(batch[i:i + 1])
        np.testing.assert_allclose(b3[i], b1[0], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(s3[i], s1[0], atol=1e-5)


@pytest.mark.slow
def test_static_batch_half_and_simplify_note(nano_ckpt, tmp_path):
    """Static batch loops over images; --half keeps float32 I/O; --simplify degrades to a note."""
    from flowdet.export.onnx_export import export_onnx
    from flowdet.export.parity import synthetic_images
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    lines: list[str] = []
    res = export_onnx(nano_ckpt, tmp_path / "h.onnx", half=True, simplify=True, log=lines.append)
    assert res.meta.precision == "fp16" and res.parity is not None and res.parity.ok
    if not any("onnxsim simplified" in ln for ln in lines):
        assert any("onnxsim is not installed" in ln for ln in lines)
    pred = OnnxPredictor(res.path)
    assert pred.fixed_batch == 1 and pred.input_dtype == np.float32
    dets = pred.predict(synthetic_images(3, (240, 320)), conf=0.3)
    assert len(dets) == 3 and all(len(d) for d in dets)


@pytest.mark.slow
def test_parity_failure_exits_and_writes_nothing(nano_ckpt, tmp_path, monkeypatch):
    from flowdet.errors import FlowdetError
    from flowdet.export import parity
    from flowdet.export.onnx_export import export_onnx

    monkeypatch.setitem(parity.TOLERANCES, "fp32", {"scores": 0.0, "box_rel": 0.0, "box_px": 0.0, "unmatched": 0.0})
    with pytest.raises(FlowdetError, match="parity check failed"):
        export_onnx(nano_ckpt, tmp_path / "m.onnx", log=lambda m: None)
    assert not list(tmp_path.iterdir())  # neither the model nor a temp file is left behind




@pytest.mark.slow
def test_cli_export_prints_parity(nano_ckpt, tmp_path, grogol_val, capsys):
    src = str(grogol_val) if grogol_val else None
    code, err = run_cli(capsys, "export", "--ckpt", str(nano_ckpt), "--out", str(tmp_path / "m.onnx"), "--no-ema",
                     *(["--parity-data", src] if src else []))
    assert code == 0, err
    assert "parity (6 " in err and "→ OK" in err
    assert (tmp_path / "m.onnx").is_file()


def test_cli_engine_without_tensorrt_exits_2(nano_ckpt, tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    code, err = run_cli(capsys, "export", "--ckpt", str(nano_ckpt), "--format", "engine", "--out", str(tmp_path / "m.engine"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "TensorRT" in lines[0] and "not installed" in lines[0]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, needle", [
    (["--img-size", "100"], "multiple of 32"),
    (["--opset", "9"], "--opset 9"),
])
def test_cli_user_errors_exit_2(nano_ckpt, tmp_path, args, needle, capsys):
    code, err = run_cli(capsys, "export", "--ckpt", str(nano_ckpt), "--out", str(tmp_path / "m.onnx"), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_bad_checkpoint_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, err = run_cli(capsys, "export", "--ckpt", str(bad), "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "bad.pt" in err and len(err.strip().splitlines()) == 1


def test_rep_size_exports_its_fused_form(tmp_path):
    """nano-dr (RepVGG branches in training) exports as one conv per block: nano-d's graph, parity passing."""
    import onnx
    from conftest import make_checkpoint

    from flowdet.export.onnx_export import export_onnx

    def conv_shapes(size: str) -> list[tuple]:
        out = tmp_path / f"{size}.onnx"
        export_onnx(make_checkpoint(tmp_path / f"{size}.pt", size, img_size=128), out, log=lambda m: None)
        graph = onnx.load(str(out)).graph
        inits = {i.name: tuple(i.dims) for i in graph.initializer}
        assert "BatchNormalization" not in {n.op_type for n in graph.node}
        return [inits[n.input[1]] for n in graph.node if n.op_type == "Conv"]

    assert conv_shapes("nano-dr") == conv_shapes("nano-d")
