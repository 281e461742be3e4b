"""TorchPredictor, `flowdet predict` outputs, `flowdet eval` over the Predictor interface, drawing."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.core.draw import draw_detections

torch = pytest.importorskip("torch")

from flowdet.cli import main  # noqa: E402
from flowdet.detect.io import minimal_checkpoint  # noqa: E402
from flowdet.engine.checkpoint import save_checkpoint  # noqa: E402
from flowdet.models.yolox import build_model  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("nano", 1)
    # A fresh head predicts obj·cls ≈ 1e-4 everywhere; raise the objectness/class bias so that some
    # boxes pass a 0.25 threshold and the drawing/json paths carry real detections.
    with torch.no_grad():
        for conv in list(model.head.obj_preds) + list(model.head.cls_preds):
            conv.bias.fill_(3.0)
    p = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(minimal_checkpoint(model, ["bottle"], (160, 160)), p)
    return p


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(120, 200), (180, 160)]):
        cv2.imwrite(str(d / f"im{i}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (d / "notes.txt").write_text("not an image")
    return d


def test_torch_predictor_implements_the_protocol(ckpt, folder):
    from flowdet.detect.torch_predictor import TorchPredictor
    from flowdet.runtime.predict.predictor import load_predictor

    p = load_predictor(str(ckpt), img_size=128)
    assert isinstance(p, TorchPredictor) and p.names == ["bottle"] and p.img_size == (128, 128)
    assert TorchPredictor(ckpt).img_size == (160, 160)  # the training size by default
    img = cv2.imread(str(folder / "im0.png"))
    dets = p.predict([img, img[:60]], conf=0.25)
    assert len(dets) == 2 and len(dets[0]) > 0
    d = dets[1]
    assert d.boxes.dtype == np.float32 and d.boxes[:, [0, 2]].max() <= 200 and d.boxes[:, [1, 3]].max() <= 60
    assert (d.scores >= 0.25).all() and (d.class_ids == 0).all()


def test_predict_cli_writes_drawings_results_and_jsonl(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "pred"
    main(["predict", str(folder), "--ckpt", str(ckpt), "--out", str(out), "--conf", "0.25", "--batch", "2"])
    text = capsys.readouterr().out
    images, n_det = map(int, re.search(r"(\d+) images, (\d+) detections?", text).groups())
    assert images == 2 and n_det > 0 and f"wrote {out}: results.json, detections.jsonl, 2 annotated images" in text
    assert "next: flowdet eval --model" in text and "no detections" not in text
    assert (out / "im0.png").is_file() and (out / "im1.png").is_file()
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert [Path(x["file"]).name for x in lines] == ["im0.png", "im1.png"]
    assert set(lines[0]) >= {"file", "boxes", "scores", "class_ids", "width", "height"}
    assert len(lines[0]["boxes"]) == len(lines[0]["scores"]) == len(lines[0]["class_ids"])
    results = json.loads((out / "results.json").read_text())
    assert len(results) == n_det and {r["image_id"] for r in results} <= {"im0", "im1"}
    assert set(results[0]) >= {"image_id", "category_id", "bbox", "score", "file_name"}


def test_predict_single_image_and_model_alias(ckpt, folder, tmp_path):
    main(["predict", str(folder / "im1.png"), "--model", str(ckpt), "--out", str(tmp_path / "one"), "--no-draw"])
    assert len((tmp_path / "one" / "detections.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "one" / "im1.png").exists()


@pytest.mark.parametrize("what", ["model", "source"])
def test_predict_user_errors_exit_2(ckpt, folder, tmp_path, what, capsys):
    model = str(tmp_path / "nope.pt") if what == "model" else str(ckpt)
    source = str(tmp_path / "missing_dir") if what == "source" else str(folder)
    with pytest.raises(SystemExit) as e:
        main(["predict", source, "--model", model, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert ("model file not found" if what == "model" else "no such file or folder") in capsys.readouterr().err


def test_eval_cli_over_the_predictor_interface(ckpt, tmp_path, capsys):
    d = tmp_path / "val"
    (d / "images").mkdir(parents=True)
    img = np.full((160, 160, 3), 100, np.uint8)
    cv2.imwrite(str(d / "images" / "a.jpg"), img)
    cv2.imwrite(str(d / "images" / "b.jpg"), img)
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 160, "height": 160},
                     {"id": 7, "file_name": "b.jpg", "width": 160, "height": 160}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}],
          "categories": [{"id": 3, "name": "bottle"}]}
    (d / "ann.json").write_text(json.dumps(gt))
    out = tmp_path / "ev"
    main(["eval", "--ckpt", str(ckpt), "--ann", str(d / "ann.json"), "--images", str(d / "images"),
          "--out", str(out), "--batch", "2", "--img-size", "128"])
    text = capsys.readouterr().out
    assert "maxDets= 100" in text and "Reference study layout" in text
    m = json.loads((out / "metrics.json").read_text())
    assert {"AP", "AP50", "APs", "AR100", "AR1000"} <= set(m["metrics"])
    assert (out / "pr_curve.png").stat().st_size > 0 and (out / "prf_curve.png").stat().st_size > 0
    assert 0 <= m["metrics"]["best_f1_conf"] <= 1 and "best F1" in text
    assert re.search(r"best F1 [\d.]+ at conf \d\.\d{3} ", text)  # three decimals (was 0.00 for 0.012)
    dets = json.loads((out / "detections.json").read_text())
    assert dets and {r["image_id"] for r in dets} <= {1, 7} and {r["category_id"] for r in dets} == {3}
    assert all(r["score"] >= 0.001 for r in dets)
    assert max(sum(r["image_id"] == i for r in dets) for i in (1, 7)) <= 1000


def test_draw_detections_marks_the_boxes():
    img = np.zeros((100, 120, 3), np.uint8)
    out = draw_detections(img, np.array([[10, 20, 50, 60]], np.float32), np.array([0.9]), np.array([0]), ["bottle"])
    assert out.shape == img.shape and img.max() == 0  # the input is not modified
    assert out[40, 10].any() and not out[40, 30].any()  # box edge drawn, inside left empty


def test_predict_and_eval_paths_are_torch_free():
    """The ONNX path of predict/eval runs on the core install: importing them must not pull torch."""
    import subprocess
    import sys

    code = ("import sys, flowdet.detect.predict, flowdet.detect.evaluate, flowdet.commands.detect, "
            "flowdet.data.transforms, flowdet.core.draw; print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_predict_into_a_used_folder_never_mixes_with_old_drawings(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "preds"
    main(["predict", str(folder), "--model", str(ckpt), "--out", str(out)])
    main(["predict", str(folder / "im1.png"), "--model", str(ckpt), "--out", str(out)])
    assert "writing to" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "preds2").glob("*.png")) == ["im1.png"]
    assert len((out / "detections.jsonl").read_text().splitlines()) == 2  # the first run untouched
    main(["predict", str(folder / "im1.png"), "--model", str(ckpt), "--out", str(out), "--exist-ok"])
    assert "holds earlier results" in capsys.readouterr().err and not (tmp_path / "preds3").exists()


def test_predict_globs_recursive_ann_ids_save_txt_and_video_hint(ckpt, folder, tmp_path, capsys):
    sub = tmp_path / "nested" / "deeper"
    sub.mkdir(parents=True)
    cv2.imwrite(str(sub / "7.png"), cv2.imread(str(folder / "im0.png")))
    main(["predict", str(tmp_path / "nested"), "--model", str(ckpt), "--out", str(tmp_path / "r"), "--recursive",
          "--save-txt", "--no-draw"])
    assert (tmp_path / "r" / "labels" / "deeper" / "7.txt").is_file()  # the path below SOURCE kept
    line = json.loads((tmp_path / "r" / "detections.jsonl").read_text().splitlines()[0])
    assert line["names"] == ["bottle"] * len(line["boxes"]) and set(line["category_ids"]) <= {1}
    # Before: image ids were file order; now the user's COCO ids (or the file stem).
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps({"images": [{"id": 41, "file_name": "im0.png"}, {"id": 42, "file_name": "im1.png"}]}))
    main(["predict", str(folder / "im*.png"), "--model", str(ckpt), "--out", str(tmp_path / "g"), "--ann", str(ann),
          "--no-draw", "--conf", "0.01"])
    assert {r["image_id"] for r in json.loads((tmp_path / "g" / "results.json").read_text())} <= {41, 42}
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "clip.mp4"), "--model", str(ckpt), "--out", str(tmp_path / "v")])
    assert "flowdet stream" in capsys.readouterr().err


def test_predict_on_a_video_refuses_before_any_folder_with_a_stream_command_that_runs(ckpt, tmp_path, capsys):
    # Before: "writing to runs/predict3", then a hint whose `--out DIR` stream refuses (it takes an .mp4).
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "old.json").write_text("{}")  # a used --out: no "writing to v2" either
    with pytest.raises(SystemExit) as e:
        main(["predict", str(tmp_path / "clip.mp4"), "--model", str(ckpt), "--out", str(tmp_path / "v")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "writing to" not in err and not (tmp_path / "v2").exists()
    hint = err[err.index("flowdet stream"):].split()
    assert hint[hint.index("--model") + 1] == str(ckpt) and hint[hint.index("--out") + 1].endswith(".mp4")


def test_eval_out_follows_the_run_folder_rule(ckpt, tmp_path, capsys):
    # Before: a second `eval --out runs/eval` replaced the first one's metrics silently.
    d = tmp_path / "val"
    (d / "images").mkdir(parents=True)
    cv2.imwrite(str(d / "images" / "a.jpg"), np.full((160, 160, 3), 100, np.uint8))
    (d / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 160, "height": 160}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "bottle"}]}))
    args = ["eval", "--ckpt", str(ckpt), "--ann", str(d / "ann.json"), "--img-size", "64", "--out", str(tmp_path / "ev")]
    main(args)
    first = (tmp_path / "ev" / "metrics.json").read_bytes()
    main(args)
    assert "writing to" in capsys.readouterr().err and (tmp_path / "ev2" / "metrics.json").is_file()
    assert (tmp_path / "ev" / "metrics.json").read_bytes() == first
    main([*args, "--exist-ok"])
    assert not (tmp_path / "ev3").exists()


def test_predict_with_no_detections_says_so_with_a_hint_not_raw_json(ckpt, folder, tmp_path, capsys):
    # Before: `{"images": 2, "skipped": 0, "detections": 0, ...}` and nothing else.
    main(["predict", str(folder), "--model", str(ckpt), "--out", str(tmp_path / "p"), "--conf", "1.0"])
    out = capsys.readouterr().out
    assert "{" not in out and "0 detections at conf ≥ 1" in out and "try a lower --conf" in out
    assert f"wrote {tmp_path / 'p'}: results.json, detections.jsonl" in out


def test_export_stores_the_best_f1_threshold_and_predict_uses_it_without_conf(ckpt, folder, tmp_path, capsys):
    # Before: the threshold eval printed lived nowhere; predict ran at 0.25 whatever the model.
    from flowdet.engine.checkpoint import load_checkpoint
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    ck = load_checkpoint(ckpt)
    ck.update(epoch=4, metrics={"best_f1_conf": 0.4321, "best_f1": 0.61, "AP": 0.2})
    trained = tmp_path / "best.pt"
    save_checkpoint(ck, trained)
    main(["export", "--ckpt", str(trained), "--out", str(tmp_path / "m.onnx"), "--no-parity"])
    meta = OnnxPredictor(tmp_path / "m.onnx").meta
    assert meta.best_conf == 0.4321 and "epoch 5" in meta.best_conf_from
    for model in (tmp_path / "m.onnx", trained):
        capsys.readouterr()
        main(["predict", str(folder), "--model", str(model), "--out", str(tmp_path / "p"), "--no-draw"])
        cap = capsys.readouterr()
        assert "conf 0.432: the best-F1 threshold stored in the model (best F1 0.610" in cap.err, cap.err
        assert " at conf ≥ 0.4321" in cap.out
        scores = [s for ln in (tmp_path / "p" / "detections.jsonl").read_text().splitlines()
                  for s in json.loads(ln)["scores"]]
        assert all(s >= 0.432 for s in scores)
        main(["predict", str(folder), "--model", str(model), "--out", str(tmp_path / "q"), "--conf", "0.9"])
        assert "best-F1 threshold" not in capsys.readouterr().err  # --conf given: nothing to say
    main(["predict", str(folder), "--model", str(ckpt), "--out", str(tmp_path / "r"), "--no-draw"])
    assert "conf 0.250: the default; the model stores no best-F1 threshold" in capsys.readouterr().err


def test_eval_curves_are_titled_with_the_users_dataset_name_not_the_cache_file(tmp_path):
    from flowdet.detect.evaluate import dataset_label

    assert dataset_label(tmp_path / "yolo" / "data.yaml", None) == "data.yaml (val split)"
    assert dataset_label(tmp_path / "val.json", None) == "val.json"
