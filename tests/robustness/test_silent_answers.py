"""Silent answers: inputs that used to give a plausible number, file or exit 0 with no word. Each case
must now warn, count or refuse (docs/robustness.md, "Silent answers")."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flowdet.core.detections import Detections
from robustness import hostile


def _strict_json(text: str):
    """json.loads that refuses NaN/Infinity (what a strict reader, e.g. JavaScript's, does)."""
    def refuse(name: str):
        raise ValueError(f"{name} in the json")
    return json.loads(text, parse_constant=refuse)


def _edit(ann: Path, **fields) -> Path:
    data = json.loads(ann.read_text())
    data.update(fields)
    ann.write_text(json.dumps(data))
    return ann


# ------------------------------------------------------------------------ model classes vs GT

def test_eval_refuses_a_model_for_other_classes(cli, onnx64, tmp_path):
    ann = _edit(hostile.coco(tmp_path / "ds"), categories=[{"id": 1, "name": "person"}])
    cli("eval", "--model", onnx64, "--ann", ann).fails(str(ann), "['bottle']", "['person']", "share no name")


def test_eval_matches_by_name_and_warns_about_the_rest(cli, onnx64, tmp_path):
    """The model's 'bottle' is category 7 here (another id), next to a 'car' the model lacks."""
    ann = hostile.coco(tmp_path / "ds")
    data = json.loads(ann.read_text())
    _edit(ann, categories=[{"id": 1, "name": "car"}, {"id": 7, "name": "Bottle"}],
          annotations=[{**a, "category_id": 7} for a in data["annotations"]])
    res = cli("eval", "--model", onnx64, "--ann", ann, "--json", tmp_path / "dets.json").ok()
    assert "categories ['car'] of ann.json are not classes of the model" in res.err
    dets = json.loads((tmp_path / "dets.json").read_text())
    assert dets and {d["category_id"] for d in dets} == {7}


class _Fixed:
    """A predictor that returns the same detections for every image (classes as given)."""

    img_size = (64, 64)

    def __init__(self, names, boxes, classes):
        self.names = names
        self.det = Detections(np.asarray(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                              np.asarray(classes, np.int64))

    def predict(self, images, conf=0.25, iou=0.65):
        return [self.det for _ in images]


def test_eval_remaps_classes_in_another_order(tmp_path, capsys):
    from flowdet.detect.evaluate import evaluate

    ann = hostile.coco(tmp_path / "ds", n=2)  # one box per image at xywh [10, 10, 21, 16], category 1
    data = json.loads(ann.read_text())
    _edit(ann, categories=[{"id": 1, "name": "b"}, {"id": 2, "name": "a"}],
          annotations=[{**a, "category_id": 2} for a in data["annotations"]])
    # model class 0 is 'a': by position it would be scored as category 1 ('b'): AP 0
    stats = evaluate(_Fixed(["a", "b"], [[10, 10, 31, 26]], [0]), ann, progress=False)
    assert stats["AP"] == pytest.approx(1.0) and stats["classes_matched_by"] == "name"
    assert "categories_without_class" not in stats and "classes_not_scored" not in stats
    assert "matched by name" in capsys.readouterr().err


def test_eval_of_a_model_without_names_says_it_matched_by_position(tmp_path, capsys):
    from flowdet.detect.evaluate import evaluate

    ann = hostile.coco(tmp_path / "ds", n=2)
    stats = evaluate(_Fixed(["class0"], [[10, 10, 31, 26]], [0]), ann, progress=False)
    err = capsys.readouterr().err
    assert "warning: the model has no class names" in err and "i-th category" in err
    assert stats["AP"] == pytest.approx(1.0) and stats["classes_matched_by"] == "order"


# --------------------------------------------------------------------- untrusted model outputs

def _hostile_outputs():
    """6 candidates over the threshold: one good box, then NaN, a score of 7.5, zero height, an
    infinite corner, a NaN score."""
    boxes = np.array([[[10, 10, 30, 30], [np.nan, 5, 20, 20], [40, 40, 50, 50], [5, 20, 25, 20],
                       [0, 0, np.inf, 9], [30, 5, 40, 15]]], np.float32)
    scores = np.array([[[0.9], [0.9], [7.5], [0.8], [0.9], [np.nan]]], np.float32)
    return boxes, scores


def test_postprocess_drops_and_counts_invalid_outputs():
    from flowdet.core.postprocess import postprocess
    from flowdet.runtime.predict.layouts import ULTRA_E2E, Layout, Transform, decode_outputs
    from flowdet.runtime.predict.metadata import ModelMeta

    boxes, scores = _hostile_outputs()
    (d,) = postprocess(boxes, scores, [1.0], [(64, 64)], conf_thr=0.25)
    assert len(d) == 1 and d.invalid == 5 and np.isfinite(d.boxes).all()
    # an end-to-end graph gives class ids too: -1 and 99 from a 1-class model are not classes
    out = np.array([[[10, 10, 30, 30, 0.9, 0], [10, 10, 30, 30, 0.9, -1], [10, 10, 30, 30, 0.9, 99]]], np.float32)
    layout = Layout(ULTRA_E2E, ModelMeta(names=["a"], cat_ids=[1], img_size=(64, 64)), "output0")
    (d,) = decode_outputs([out], layout, [Transform(1.0, 1.0)], [(64, 64)], conf=0.25)
    assert len(d) == 1 and d.invalid == 2 and d.class_ids.tolist() == [0]


def test_invalid_outputs_never_reach_a_file(cli, tmp_path):
    boxes, scores = _hostile_outputs()
    model = hostile.onnx_emitting(tmp_path / "broken.onnx", boxes, scores, ["bottle"])
    img = hostile.image(tmp_path / "in" / "a.jpg", 64, 64)
    res = cli("predict", img, "--model", model, "--out", tmp_path / "p").ok()
    assert res.out.startswith("1 image, 1 detection at") and res.err.count("emitted 5 invalid detection") == 1
    _strict_json((tmp_path / "p" / "results.json").read_text())
    (line,) = (tmp_path / "p" / "detections.jsonl").read_text().splitlines()
    assert len(_strict_json(line)["boxes"]) == 1
    ann = hostile.coco(tmp_path / "ds", n=2, w=64, h=64)
    res = cli("eval", "--model", model, "--ann", ann, "--json", tmp_path / "dets.json").ok()
    assert res.err.count("invalid detection") == 1
    assert len(_strict_json((tmp_path / "dets.json").read_text())) == 2
    res = cli("stream", img.parent, "--model", model, "--jsonl", tmp_path / "s.jsonl").ok()
    assert res.err.count("invalid detection") == 1
    for line in (tmp_path / "s.jsonl").read_text().splitlines():
        assert len(_strict_json(line)["boxes"]) <= 1


# ------------------------------------------------------------------------------ annotations

def test_iscrowd_strings_are_read_as_meant_and_reported(cli, tmp_path):
    from flowdet.data.coco import load_coco

    ann = hostile.coco(tmp_path / "ds")
    data = json.loads(ann.read_text())
    flags = ["0", "false", "1", "maybe"]
    _edit(ann, annotations=[{**a, "iscrowd": f} for a, f in zip(data["annotations"], flags)])
    ds = load_coco(ann)
    assert [bool(r.ignore[0]) for r in ds.records] == [False, False, True, True]
    problems = [str(p) for p in ds.report.problems]
    assert any("iscrowd" in p and "a string in 3 annotation(s)" in p for p in problems), problems
    assert any("annotations[3] (id=4).iscrowd" in p and "'maybe' is not 0/1/true/false" in p for p in problems)
    res = cli("data", "check", ann).ok()
    assert "a string in 3 annotation(s)" in res.err
    cli("convert", "coco2yolo", ann, "--out", tmp_path / "yolo", "--split", "train").ok()
    labels = sorted((tmp_path / "yolo" / "labels" / "train").glob("*.txt"))
    assert [bool(p.read_text().strip()) for p in labels] == [True, True, False, False]


def test_same_file_under_two_ids_is_reported(tmp_path):
    from flowdet.data.coco import load_coco

    ann = hostile.coco(tmp_path / "ds", images=["im0.jpg", "im1.jpg", "im2.jpg"])
    data = json.loads(ann.read_text())
    data["images"][1]["file_name"] = "im0.jpg"
    data["images"][2]["file_name"] = "./im0.jpg"
    _edit(ann, images=data["images"])
    ds = load_coco(ann)
    assert [r.image_id for r in ds.records] == [1]
    msgs = [p.message for p in ds.report.problems]
    assert msgs == ["'im0.jpg' is the same file as image id 1 (skipped)",
                    "'./im0.jpg' is the same file as image id 1 (skipped)"]


def test_xml_that_is_not_voc_is_not_an_image_without_boxes(cli, tmp_path):
    from flowdet.data.voc import write_voc_xml

    for i in range(2):
        hostile.image(tmp_path / "images" / f"im{i}.jpg", seed=i)
    write_voc_xml(tmp_path / "xml" / "im0.xml", "im0.jpg", 96, 64, [("bottle", [10, 10, 20, 15], False)])
    (tmp_path / "xml" / "im1.xml").write_text('<svg width="96" height="64"><filename>im1.jpg</filename></svg>')
    res = cli("convert", "voc", tmp_path / "xml", "--images", tmp_path / "images", "--out", tmp_path / "v.json").ok()
    assert "root element is <svg>, not <annotation>" in res.err
    assert [im["file_name"] for im in json.loads((tmp_path / "v.json").read_text())["images"]] == ["im0.jpg"]


# ------------------------------------------------------------------------------------ images

@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_exif_orientation_is_one_policy_for_every_reader(tmp_path, ext):
    """Header probe (train/eval), decode (data check, predict) and loader agree: the orientation is applied."""
    from flowdet.core.imread import image_size, read_image
    from flowdet.data.coco import load_coco

    img = hostile.oriented(tmp_path / "images" / f"r{ext}", orientation=6)  # stored 96x64, shown 64x96
    pixels = read_image(img)
    assert image_size(img) == pixels.shape[1::-1] == (64, 96)
    assert pixels[:8, -8:].mean() > 200 and pixels[:8, :8].mean() < 50  # the top-left corner turned to the right
    for w, h, kept in ((64, 96, 1), (96, 64, 0)):  # the json's size: as shown (kept) or as stored (a mismatch)
        ann = tmp_path / f"ann{w}.json"
        ann.write_text(json.dumps({"images": [{"id": 1, "file_name": img.name, "width": w, "height": h}],
                                   "annotations": [], "categories": [{"id": 1, "name": "bottle"}]}))
        by_header, by_decode = load_coco(ann, check_images=False), load_coco(ann, check_images=True)
        assert len(by_header.records) == len(by_decode.records) == kept
        assert [str(p) for p in by_header.report.problems] == [str(p) for p in by_decode.report.problems]


# ---------------------------------------------------------------------------------- training

def test_backbone_of_another_width_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from flowdet.detect.backbone import load_backbone
    from flowdet.errors import ModelFileError
    from flowdet.models.yolox import build_model

    # a tiny (wider) backbone saved without its model_size: only the size check used to stop it
    torch.save({"state_dict": build_model("tiny", 1).backbone.state_dict(), "method": "byol"}, tmp_path / "bb.pt")
    model = build_model("nano", 1)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with pytest.raises(ModelFileError, match=r"does not fit the nano backbone: \d+/\d+ tensors would load, [1-9]"):
        load_backbone(model, tmp_path / "bb.pt")
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_val_set_without_boxes_warns_and_best_is_the_last_epoch(cli, tmp_path):
    pytest.importorskip("torch")
    train = hostile.coco(tmp_path / "tr", n=2, w=64, h=64)
    val = hostile.coco(tmp_path / "va", n=2, w=64, h=64, boxes=False)
    res = cli("train", "--data", train, "--val", val, "--out", tmp_path / "run", "--size", "nano", "--epochs", 1,
              "--batch", 2, "--img-size", 64, "--workers", 0, "--device", "cpu", "--set", "train.progress=false",
              "--set", "augment.no_aug_epochs=0").ok()
    assert "no (non-ignore) boxes in its 2 images, so no AP can be computed" in res.err
    assert "no epoch was scored" in res.err
    from flowdet.engine.checkpoint import load_checkpoint

    best, last = (load_checkpoint(tmp_path / "run" / n) for n in ("best.pt", "last.pt"))
    assert best["epoch"] == last["epoch"] and "optimizer" not in best  # the last epoch, weights only


# ------------------------------------------------------------------------------------- media

def test_stream_of_a_video_without_a_decodable_frame_exits_2(cli, onnx64, tmp_path):
    video = hostile.undecodable_video(tmp_path / "zeros.avi")
    res = cli("stream", video, "--model", onnx64, "--jsonl", tmp_path / "d.jsonl")
    res.fails(str(video), "no frame could be decoded")
    assert not (tmp_path / "d.jsonl").exists()


def test_stream_of_several_sources_marks_the_undecodable_one_failed(onnx64, tmp_path):
    from flowdet.runtime.stream.multistream import run_multistream

    good = hostile.image(tmp_path / "imgs" / "a.jpg", 64, 64)
    s = run_multistream(onnx64, [str(hostile.undecodable_video(tmp_path / "zeros.avi")), str(good.parent)],
                        tmp_path / "out", threads=1)
    assert s["sources"]["zeros"]["state"] == "failed" and "no frame could be decoded" in s["sources"]["zeros"]["error"]
    assert s["sources"]["imgs"]["frames"] == 1


class _TwoSizes:
    """A video source whose resolution changes after two frames (OpenCV's FFmpeg reader would hide it)."""

    live, fps, description = False, 10.0, "cam.mp4"

    def open(self):
        self.frames = [np.zeros((64, 96, 3), np.uint8)] * 2 + [np.zeros((128, 160, 3), np.uint8)] * 2

    def read(self):
        return (self.frames.pop(0), None, None) if self.frames else None

    def close(self):
        pass


def test_stream_says_when_the_resolution_changes(tmp_path, capsys):
    from flowdet.runtime.stream.stream import run_stream

    s = run_stream(_Fixed(["bottle"], [[150, 100, 158, 120]], [0]), _TwoSizes(), jsonl=tmp_path / "d.jsonl",
                   track=False)
    assert s["frames"] == 4 and s["size_changes"] == 2
    err = capsys.readouterr().err
    assert err.count("warning: cam.mp4: frame 2 is 160x128, the stream started at 96x64") == 1
