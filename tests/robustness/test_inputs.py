"""Hostile values: deep JSON, out-of-range flags and config values, malformed ONNX models. Each is
one ``Error:`` line naming the file or flag (exit 2) — no traceback, and no silently wrong number."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustness import hostile

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


# -------------------------------------------------------------------------------------- JSON

def test_deep_json_is_one_line_everywhere(cli, tmp_path, onnx64, ckpt64):
    deep = hostile.deep_json(tmp_path / "deep.json")
    (tmp_path / "images").mkdir()
    for args in (["data", "check", deep], ["data", "stats", deep], ["convert", "coco2yolo", deep, "--out", tmp_path / "y"],
                 ["eval", "--model", onnx64, "--ann", deep, "--images", tmp_path / "images"],
                 ["train", "--data", deep, "--images", tmp_path / "images", "--out", tmp_path / "run", "--epochs", 1],
                 ["pretrain", "--method", "center-loss", "--ann", deep, "--images", tmp_path / "images",
                  "--out", tmp_path / "pre"],
                 ["pretrain", "--method", "byol", "--frames", deep, "--out", tmp_path / "pre2"]):
        cli(*args).fails("deep.json", "nested too deeply")
    cli("export", "--ckpt", ckpt64, "--out", tmp_path / "m.onnx", "--parity-data", deep).fails("deep.json")


# ------------------------------------------------------------------------------- numeric flags

@pytest.mark.parametrize("flag,value", [("--conf", -1), ("--conf", 2), ("--iou", -1), ("--batch", 0),
                                        ("--batch", -3), ("--threads", -3)])
def test_predict_and_eval_refuse_out_of_range_flags(cli, onnx64, tmp_path, flag, value):
    img = hostile.image(tmp_path / "a.jpg")
    ann = hostile.coco(tmp_path / "ds")
    cli("predict", img, "--model", onnx64, "--out", tmp_path / "p", flag, value).fails(flag, str(value))
    cli("eval", "--model", onnx64, "--ann", ann, flag, value).fails(flag, str(value))
    assert not (tmp_path / "p" / "results.json").exists()


@pytest.mark.parametrize("size", [-64, 300, 100000])
def test_img_size_of_a_checkpoint_is_checked(cli, ckpt64, tmp_path, size):
    img = hostile.image(tmp_path / "a.jpg")
    ann = hostile.coco(tmp_path / "ds")
    cli("predict", img, "--model", ckpt64, "--out", tmp_path / "p", "--img-size", size).fails("--img-size")
    cli("eval", "--model", ckpt64, "--ann", ann, "--img-size", size).fails("--img-size")
    cli("export", "--ckpt", ckpt64, "--out", tmp_path / "m.onnx", "--img-size", size).fails("--img-size")


@pytest.mark.parametrize("item,key", [("train.img_size=nan", "train.img_size"), ("train.img_size=inf", "train.img_size"),
                                      ("train.lr=-1", "train.lr"), ("train.lr=nan", "train.lr"),
                                      ("train.epochs=0", "train.epochs"), ("train.batch=0", "train.batch"),
                                      ("eval.conf=2", "eval.conf"), ("train.momentum=1.5", "train.momentum")])
def test_train_refuses_bad_config_values(cli, tmp_path, item, key):
    ann = hostile.coco(tmp_path / "ds")
    cli("train", "--data", ann, "--out", tmp_path / "run", "--set", item).fails(key)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_pretrain_refuses_bad_config_values(cli, tmp_path):
    frames = tmp_path / "f"
    hostile.image(frames / "a.jpg")
    for item, key in (("train.lr=-1", "train.lr"), ("train.lr=nan", "train.lr"), ("train.max_steps=-1", "train.threads")):
        cli("pretrain", "--method", "byol", "--frames", frames, "--out", tmp_path / "pre", "--set", item).fails(key)


def test_eval_batch_no_longer_changes_the_numbers(cli, onnx64, tmp_path):
    """eval --batch 0 once reported 0 detections, --batch -3 15 detections for 8 images."""
    ann = hostile.coco(tmp_path / "ds", n=5)
    dets = set()
    for b in (1, 2, 8):
        out = cli("eval", "--model", onnx64, "--ann", ann, "--batch", b).ok().out
        dets.add(next(ln for ln in out.splitlines() if "images scored" in ln).split(",")[1])
    assert len(dets) == 1, dets


# ----------------------------------------------------------------------------------- ONNX files

def _with_meta(src: Path, dst: Path, **props: str) -> Path:
    m = onnx.load(str(src))
    for entry in m.metadata_props:
        if entry.key in props:
            entry.value = props[entry.key]
    onnx.save(m, str(dst))
    return dst


def _graph(path: Path, in_type: int = 1, in_shape=(1, 3, 64, 64), boxes=(1, 10, 4), scores=(1, 10, 1)) -> Path:
    """A constant-output graph with the flowdet metadata: only its declared I/O matters here."""
    from onnx import helper, numpy_helper

    from flowdet.runtime.predict.metadata import ModelMeta

    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.zeros(shape, np.float32)))
             for name, shape in (("boxes", boxes), ("scores", scores))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", in_type, list(in_shape))],
                              [helper.make_tensor_value_info("boxes", 1, list(boxes)),
                               helper.make_tensor_value_info("scores", 1, list(scores))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in ModelMeta(names=["bottle"], cat_ids=[1], img_size=(64, 64)).to_props().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


def _bad_models(onnx64: Path, d: Path) -> dict[str, tuple[Path, str]]:
    from onnx import TensorProto

    return {
        "img_size strings": (_with_meta(onnx64, d / "a.onnx", img_size='["a", "b"]'), "img_size"),
        "cat_ids strings": (_with_meta(onnx64, d / "b.onnx", cat_ids='["x"]'), "cat_ids"),
        "letterbox list": (_with_meta(onnx64, d / "c.onnx", letterbox="[1, 2]"), "letterbox"),
        "names not a list": (_with_meta(onnx64, d / "d.onnx", names='{"a": 1}'), "names"),
        "size differs from graph": (_with_meta(onnx64, d / "e.onnx", img_size="[96, 96]"), "differs from the graph"),
        "uint8 input": (_graph(d / "f.onnx", in_type=TensorProto.UINT8), "tensor(uint8)"),
        "outputs rank 2": (_graph(d / "g.onnx", boxes=(10, 4), scores=(10, 1)), "rank 3"),
        "scores per name": (_graph(d / "h.onnx", scores=(1, 10, 3)), "one per name"),
        "not onnx": (hostile.garbage(d / "i.onnx"), "not a loadable ONNX model"),
    }


def test_malformed_onnx_models_are_refused_at_load(cli, onnx64, tmp_path):
    img = hostile.image(tmp_path / "a.jpg")
    ann = hostile.coco(tmp_path / "ds")
    assert _graph(tmp_path / "fine.onnx")  # the builder itself makes a loadable model
    cli("predict", img, "--model", tmp_path / "fine.onnx", "--out", tmp_path / "p0").ok()
    for model, needle in _bad_models(onnx64, tmp_path).values():
        cli("predict", img, "--model", model, "--out", tmp_path / "p").fails(str(model), needle)
        cli("eval", "--model", model, "--ann", ann).fails(str(model), needle)
        cli("stream", "--model", model, img).fails(str(model), needle)
    assert cli("predict", img, "--model", onnx64, "--out", tmp_path / "p1").out.startswith("1 image,")
