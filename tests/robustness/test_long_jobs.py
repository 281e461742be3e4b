"""One bad file does not end a long job, and nothing is dropped without a word: train, pretrain,
eval, predict, stream and the converters skip and count; inconsistent data is reported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness import hostile

torch = pytest.importorskip("torch")

TRAIN = ["--size", "nano", "--epochs", 1, "--batch", 2, "--img-size", 64, "--workers", 0, "--device", "cpu",
         "--set", "train.progress=false", "--set", "augment.no_aug_epochs=0"]


def _set_with_bad_files(root: Path, bad: dict[str, object]) -> Path:
    (root / "images").mkdir(parents=True)
    for name, make in bad.items():
        make(root / "images" / name)
    return hostile.coco(root, images=["im0.jpg", "im1.jpg", "im2.jpg", "im3.jpg", *bad])


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_train_skips_bad_train_and_val_images_and_finishes(cli, tmp_path):
    train = _set_with_bad_files(tmp_path / "tr", {"trunc.jpg": hostile.truncated_jpeg, "huge.png": hostile.huge_png,
                                                  "fifo.jpg": hostile.fifo, "bad_pixels.png": hostile.corrupt_png})
    val = _set_with_bad_files(tmp_path / "va", {"bad_pixels.png": hostile.corrupt_png})
    out = tmp_path / "run"
    out.mkdir()
    (out / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # left by a killed write
    res = cli("train", "--data", train, "--val", val, "--val-images", tmp_path / "va" / "images", "--out", out,
              *TRAIN).ok()
    assert "removed" in res.err and not (out / ".last.pt.k1ll3d.tmp").exists()
    assert "3 image(s) skipped" in res.err  # the header check at start: truncated, over the cap, FIFO
    # decodable header, undecodable pixels: found at read time, a blank stands in, counted per epoch
    assert "bad_pixels.png" in res.err and "image read(s) failed" in res.err
    assert "1 validation image(s) could not be read and were not scored" in res.err
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    import csv

    row = list(csv.DictReader((out / "metrics.csv").open()))[-1]
    assert int(row["unreadable"]) >= 1 and "AP" in row


@pytest.mark.timeout(300)
def test_train_without_annotations_warns(cli, tmp_path):
    ann = hostile.coco(tmp_path / "ds", boxes=False)
    res = cli("train", "--data", ann, "--out", tmp_path / "run", *TRAIN).ok()
    assert "no annotations" in res.err


@pytest.mark.timeout(300)
def test_pretrain_skips_bad_frames(cli, tmp_path):
    frames = tmp_path / "frames"
    for i in range(3):
        hostile.image(frames / f"{i}.jpg", seed=i)
    hostile.truncated_jpeg(frames / "t.jpg")
    hostile.corrupt_png(frames / "p.png")
    res = cli("pretrain", "--method", "byol", "--frames", frames, "--out", tmp_path / "pre", "--epochs", 1,
              "--batch", 2, "--device", "cpu", "--set", "data.frame_size=64", "--set", "method.crop=32",
              "--set", "method.small_crop=32", "--set", "train.threads=1").ok()
    assert "skipped 1 unreadable frame" in res.err and "t.jpg" in res.err
    assert "p.png" in res.err and "grey frame" in res.err
    assert (tmp_path / "pre" / "backbone.pt").is_file()


def test_center_loss_without_boxes_is_refused(cli, tmp_path):
    """It used to report "100% accuracy on 4 patches" (all background)."""
    ann = hostile.coco(tmp_path / "ds", boxes=False)
    cli("pretrain", "--method", "center-loss", "--ann", ann, "--out", tmp_path / "pre", "--epochs", 1).fails(
        "ann.json", "no (non-ignore) boxes")


def test_json_size_that_differs_from_the_file_is_reported(cli, tmp_path):
    """coco2yolo used to scale labels by the json's size (3x off); train and stats said nothing."""
    ann = hostile.coco(tmp_path / "ds", n=2)
    data = json.loads(ann.read_text())
    data["images"][1].update(width=288, height=192)  # the file is 96x64
    ann.write_text(json.dumps(data))
    res = cli("data", "stats", ann).ok()
    assert "1 validation problem" in res.err
    res = cli("convert", "coco2yolo", ann, "--out", tmp_path / "y").ok()
    assert "json says 288x192 but im1.jpg is 96x64" in res.err and "1 of 2 images" in res.out
    assert not (tmp_path / "y" / "labels" / "train" / "im1.txt").exists()


def test_eval_says_what_the_loader_dropped(cli, onnx64, tmp_path):
    ann = hostile.coco(tmp_path / "ds", n=4)
    data = json.loads(ann.read_text())
    data["images"][3]["file_name"] = "missing.jpg"
    data["images"][2].update(width=500)
    data["annotations"] += [{"id": 10, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 11, "image_id": 1, "category_id": 42, "bbox": [1, 1, 5, 5]},
                            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [1, 1, -5, 5]}]
    ann.write_text(json.dumps(data))
    res = cli("eval", "--model", onnx64, "--ann", ann).ok()
    assert "2/4 images, 2/7 boxes kept" in res.err and "2 image(s) skipped, 3 box(es) dropped" in res.err
    assert "2 images scored" in res.out


def test_convert_voc_continues_past_a_broken_xml_and_checks_size(cli, tmp_path):
    from flowdet.data.voc import write_voc_xml

    imgs = tmp_path / "images"
    for i in range(3):
        hostile.image(imgs / f"im{i}.jpg", seed=i)
        write_voc_xml(tmp_path / "xml" / f"im{i}.xml", f"im{i}.jpg", 96, 64, [("bottle", [10, 10, 20, 15], False)])
    (tmp_path / "xml" / "im1.xml").write_text("<annotation><object></annotation>")
    write_voc_xml(tmp_path / "xml" / "im2.xml", "im2.jpg", 960, 640, [("bottle", [10, 10, 20, 15], False)])
    res = cli("convert", "voc", tmp_path / "xml", "--images", imgs, "--out", tmp_path / "a.json").ok()
    assert "1 images" in res.out and "invalid XML at line 1" in res.err
    assert "<size> says 960x640 but im2.jpg is 96x64" in res.err
    cli("convert", "voc", tmp_path / "xml", "--images", imgs, "--out", tmp_path / "b.json", "--strict").fails(
        "im1.xml", "invalid XML")
    assert not (tmp_path / "b.json").exists()


def test_coco2yolo_never_writes_one_image_over_another(cli, tmp_path):
    root = tmp_path / "ds"
    for d in ("a", "b"):
        hostile.image(root / "images" / d / "x.jpg")
    # absolute names inside --images keep their sub-folder (they used to collapse to x.jpg, one over the other)
    ann = hostile.coco(root, images=[str(root / "images" / "a" / "x.jpg"), str(root / "images" / "b" / "x.jpg"),
                                     "./a/x.jpg"])
    res = cli("convert", "coco2yolo", ann, "--out", tmp_path / "y").ok()
    # the third is the first's file under another id: the loader skips it before coco2yolo could
    assert "2 of 3 images" in res.out and "'./a/x.jpg' is the same file as image id 1 (skipped)" in res.err
    labels = tmp_path / "y" / "labels" / "train"
    assert (labels / "a" / "x.txt").is_file() and (labels / "b" / "x.txt").is_file()


def test_stream_says_when_a_video_ends_early(cli, onnx64, tmp_path):
    video = hostile.truncated_video(tmp_path / "cut.avi", frames=40)
    res = cli("stream", "--model", onnx64, video).ok()
    assert "stopped by end" in res.out and "of 40 frames the header announces (truncated?)" in res.err


def test_predict_keeps_what_finished_when_interrupted(tmp_path):
    from flowdet.core.detections import Detections
    from flowdet.detect.predict import predict_source

    for i in range(4):
        hostile.image(tmp_path / "src" / f"{i}.jpg", seed=i)

    class Flaky:
        names, cat_ids, img_size, calls = ["bottle"], [1], (64, 64), 0

        def predict(self, images, conf=0.25, iou=0.65):
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise KeyboardInterrupt
            return [Detections() for _ in images]

    with pytest.raises(KeyboardInterrupt):
        predict_source(Flaky(), tmp_path / "src", tmp_path / "out", progress=False)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == []
    assert len((tmp_path / "out" / "detections.jsonl").read_text().splitlines()) == 2
