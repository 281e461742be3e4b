"""export --int8 / OpenVINO: calibration, the gate (a black-frame calibration is refused in one
line), the gate result in the metadata, the OpenVINO predictor, and the missing-extra message.

The val set is the fp32 model's own confident detections on synthetic scenes (pseudo labels): a
random-init model scores a high AP on it, so an INT8 model that lost its activation ranges shows
as an AP drop. ``--min-speedup 0`` keeps timing out of every assert.
"""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli
from openvino_child import ran_in_child


def _ran_in_child(name: str) -> bool:
    return ran_in_child(__file__, name)


@pytest.fixture(scope="module")
def pseudo_val(nano_onnx, synth_small, tmp_path_factory):
    """A COCO json whose ground truth is the fp32 model's detections at conf 0.3."""
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    coco = json.loads((synth_small / "annotations.json").read_text())
    coco["images"] = coco["images"][:4]  # 4 scenes are enough to see an AP collapse; each costs 2 evals
    img_dir = synth_small / "images"
    pred = OnnxPredictor(nano_onnx, providers="cpu")
    anns = []
    for im in coco["images"]:
        det = pred.predict([cv2.imread(str(img_dir / im["file_name"]))], conf=0.3)[0]
        for (x1, y1, x2, y2) in det.boxes.tolist():
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    assert len(anns) > 10  # the fixture model has NMS work to do (tests/conftest.py)
    out = tmp_path_factory.mktemp("pseudo") / "val.json"
    out.write_text(json.dumps({"images": coco["images"], "annotations": anns,
                               "categories": [{"id": 1, "name": "bottle"}]}))
    return out, img_dir


def _args(onnx, out, calib, val, *extra):
    return ["export", "--ckpt", str(onnx), "--out", str(out), "--int8", "--calib", str(calib), "--val", str(val[0]),
            "--images", str(val[1]), "--min-speedup", "0", "--gate-runs", "5", *extra]


@pytest.mark.slow
def test_black_calibration_is_refused(nano_onnx, pseudo_val, tmp_path, capsys):
    black = tmp_path / "black"
    black.mkdir()
    for i in range(2):
        cv2.imwrite(str(black / f"{i}.png"), np.zeros((360, 640, 3), np.uint8))
    out = tmp_path / "m.int8.onnx"
    code, stderr = run_cli(capsys, *_args(nano_onnx, out, black, pseudo_val))
    assert code == 2, stderr
    err = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "refused onnxruntime int8" in err[0] and "AP drop" in err[0], stderr
    assert "vs fp32" in err[0] and "ms" in err[0]  # both APs and both latencies in the one line
    assert not out.exists()  # a refused candidate is not written
    gate = json.loads((tmp_path / "m.int8.onnx.gate.json").read_text())
    assert not gate["passed"] and gate["ap_drop_points"] > 1.0 and gate["ap_fp32"] > 0.5


@pytest.mark.slow
def test_forced_int8_carries_gate_and_cpu_flags(nano_onnx, pseudo_val, synth_small, tmp_path, capsys):
    from flowdet.export.edge import read_gate
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    out = tmp_path / "m.int8.onnx"
    code, stderr = run_cli(capsys, *_args(nano_onnx, out, synth_small / "images", pseudo_val, "--force",
                                          "--calib-frames", "4"))
    assert code == 0, stderr
    gate = read_gate(out)
    assert gate is not None and set(gate["cpu"]) >= {"vnni", "bf16", "amx"}
    assert gate["ap_fp32"] > 0.5 and gate["ap_candidate"] is not None
    pred = OnnxPredictor(out, providers="cpu")
    assert pred.meta.precision == "int8"
    q = json.loads(dict(pred.session.get_modelmeta().custom_metadata_map)["quantization"])
    assert q["per_channel"] and q["calib_frames"] == 4 and len(q["fp32_nodes"]) == 9  # 3 levels × reg/obj/cls
    import onnx

    nodes = onnx.load(str(out)).graph.node
    quantized_inputs = {i for n in nodes if n.op_type == "DequantizeLinear" for i in n.output}
    head = [n for n in nodes if n.name in q["fp32_nodes"]]
    assert head and all(n.input[1] not in quantized_inputs for n in head)  # head weights stay fp32


def test_gate_needs_val_or_force(nano_onnx, synth_small, tmp_path, capsys):
    code, stderr = run_cli(capsys, "export", "--ckpt", str(nano_onnx), "--out", str(tmp_path / "m.onnx"), "--int8",
                           "--calib", str(synth_small))
    assert code == 2 and "--val" in stderr and len(stderr.strip().splitlines()) == 1


def test_cpu_flags_from_cpuinfo(tmp_path):
    from flowdet.export.gate import cpu_flags

    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f avx512_vnni amx_tile\n")
    assert cpu_flags(f) == {"model": "Test CPU", "avx2": True, "vnni": True, "bf16": False, "amx": True,
                            "avx512": True, "neon": False}
    # AVX2 alone (an AMD EPYC without AVX-512): the latency tables must say so
    f.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx2 fma\n")
    from flowdet.export.gate import describe_cpu

    line = describe_cpu(cpu_flags(f))
    assert line.startswith("AMD EPYC") and "AVX2=yes AVX512=no VNNI=no BF16=no AMX=no" in line
    assert cpu_flags(tmp_path / "absent")["vnni"] is False


def test_openvino_missing_is_one_line(nano_onnx, monkeypatch):
    from flowdet.errors import MissingDependency
    from flowdet.runtime.predict.predictor import load_predictor

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino → ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'flowdet\[openvino\]'"):
        load_predictor(str(nano_onnx), backend="openvino")


def test_openvino_matches_onnxruntime(request, tmp_path):
    pytest.importorskip("openvino")
    if _ran_in_child("test_openvino_matches_onnxruntime"):
        return
    nano_onnx = request.getfixturevalue("nano_onnx")
    from flowdet.export.parity import synthetic_images
    from flowdet.export.quantize import convert_openvino
    from flowdet.runtime.predict.predictor import load_predictor

    images = synthetic_images(2, (240, 320), seed=3)
    ref = load_predictor(str(nano_onnx), device="cpu").predict(images, conf=0.3)
    xml = convert_openvino(nano_onnx, tmp_path / "m.xml")
    for model, backend in ((str(nano_onnx), "openvino"), (str(xml), None)):
        pred = load_predictor(model, backend=backend, threads=1)
        assert pred.names == ["bottle"] and pred.precision == "fp32"
        got = pred.predict(images, conf=0.3)
        for a, b in zip(ref, got):
            assert len(a.boxes) == len(b.boxes) > 0
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
            np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)


def test_backend_flag_errors(nano_onnx):
    from flowdet.errors import InputError
    from flowdet.runtime.predict.predictor import load_predictor

    with pytest.raises(InputError, match="OpenVINO option"):
        load_predictor(str(nano_onnx), precision="bf16")
    with pytest.raises(InputError, match="--backend"):
        load_predictor(str(nano_onnx), backend="tflite")


def test_stream_and_predict_on_openvino(request, tmp_path, capsys):
    pytest.importorskip("openvino")
    if _ran_in_child("test_stream_and_predict_on_openvino"):
        return
    nano_onnx, small_video, synth_small = (request.getfixturevalue(n) for n in ("nano_onnx", "small_video", "synth_small"))
    jsonl = tmp_path / "d.jsonl"
    code, stderr = run_cli(capsys, "stream", str(small_video), "--model", str(nano_onnx), "--backend", "openvino",
                           "--threads", "1", "--max-frames", "3", "--jsonl", str(jsonl), "--tile", "160")
    assert code == 0, stderr
    assert len(jsonl.read_text().splitlines()) == 3
    code, stderr = run_cli(capsys, "predict", str(synth_small / "images"), "--model", str(nano_onnx), "--backend",
                           "openvino", "--no-draw", "--out", str(tmp_path / "pred"))
    assert code == 0, stderr
    code, stderr = run_cli(capsys, "predict", str(synth_small / "images"), "--model", str(nano_onnx),
                           "--precision", "bf16", "--out", str(tmp_path / "pred2"))
    assert code == 2 and "--backend openvino" in stderr


def test_openvino_int8_options_are_checked():
    from flowdet.errors import InputError
    from flowdet.export.quantize import OvQuantOptions

    assert OvQuantOptions() == OvQuantOptions(conv_only=True, preset="mixed", head_fp32=True,
                                              overflow_fix="first_layer")  # the gate's defaults
    for bad in ({"preset": "fast"}, {"overflow_fix": "half"}):
        with pytest.raises(InputError, match="choose"):
            OvQuantOptions(**bad)


def test_openvino_int8_options_reach_nncf(request, tmp_path):
    """pointwise_fp32 leaves every 1×1 conv's weights unquantized and the k×k ones quantized; the
    options are recorded in the IR's metadata."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    if _ran_in_child("test_openvino_int8_options_reach_nncf"):
        return
    nano_onnx = request.getfixturevalue("nano_onnx")
    import openvino as ov

    from flowdet.core.letterbox import preprocess_batch
    from flowdet.export.parity import synthetic_images
    from flowdet.export.quantize import OvQuantOptions, quantize_openvino
    from flowdet.runtime.predict.openvino_runtime import read_props

    batches = [preprocess_batch([im], (320, 320))[0] for im in synthetic_images(2, (240, 320), seed=3)]
    xml = quantize_openvino(nano_onnx, tmp_path / "pw.xml", batches, log=lambda m: None,
                            options=OvQuantOptions(pointwise_fp32=True))
    model = ov.Core().read_model(str(xml))
    meta = json.loads(read_props(model)["quantization"])
    assert meta["pointwise_fp32"] is True and meta["overflow_fix"] == "first_layer"
    weights_fq = {}  # conv → whether its weights are INT8 (an i8 constant + Convert/Multiply, or a FakeQuantize)
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Convolution":
            w = op.input_value(1).get_node()
            while w.get_type_name() in ("Convert", "Multiply", "Subtract") and w.get_input_size():
                w = w.input_value(0).get_node()
            k = list(op.input(1).get_partial_shape().to_shape())[2:]
            int8 = w.get_type_name() == "FakeQuantize" or w.get_output_element_type(0) in (ov.Type.i8, ov.Type.u8)
            weights_fq[op.get_friendly_name()] = (k == [1, 1], int8)
    assert any(pw for pw, _ in weights_fq.values()) and any(not pw for pw, _ in weights_fq.values())
    assert not any(fq for pw, fq in weights_fq.values() if pw)  # 1×1: fp32 weights
    assert any(fq for pw, fq in weights_fq.values() if not pw)  # k×k: INT8 weights
