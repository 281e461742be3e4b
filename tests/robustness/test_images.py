"""Hostile image files × every verb that reads images: each is a counted skip naming the file (or,
when nothing is left, one error line), never a traceback, a hang, a 2 GB allocation or a half image."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness import hostile

pytest.importorskip("torch")

# name → (writer, the reason the reader gives)
HOSTILE = {
    "huge_header.jpg": (hostile.huge_jpeg, "over the"),
    "huge_ihdr.png": (hostile.huge_png, "over the"),
    "truncated.jpg": (hostile.truncated_jpeg, "truncated JPEG"),
    "garbage.jpg": (hostile.garbage, "does not decode"),
    "bad_pixels.png": (hostile.corrupt_png, "does not decode"),
    "fifo.jpg": (hostile.fifo, "not a regular file"),
}


def _folder(root: Path, good: int = 2) -> Path:
    """``good`` valid images plus one of each hostile kind."""
    for i in range(good):
        hostile.image(root / f"ok{i}.jpg", seed=i)
    for name, (make, _) in HOSTILE.items():
        make(root / name)
    return root


def test_reader_refuses_each_kind_before_decoding(tmp_path):
    from flowdet.core.imread import ImageReadError, image_size, read_image

    _folder(tmp_path, good=0)
    for name, (_, reason) in HOSTILE.items():
        with pytest.raises(ImageReadError, match=reason) as e:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)
    with pytest.raises(ImageReadError, match="does not decode"):  # no known header: never decoded to find out
        image_size(tmp_path / "garbage.jpg")
    with pytest.raises(ImageReadError, match="over the"):
        image_size(tmp_path / "huge_ihdr.png")


def test_pixel_cap_is_configurable(tmp_path, monkeypatch):
    from flowdet.core.imread import ImageReadError, read_image

    img = hostile.image(tmp_path / "a.png", 96, 64)
    assert read_image(img, limit=96 * 64).shape == (64, 96, 3)
    with pytest.raises(ImageReadError, match="over the"):
        read_image(img, limit=96 * 64 - 1)
    monkeypatch.setenv("FLOWDET_MAX_PIXELS", "1000")
    with pytest.raises(ImageReadError, match="FLOWDET_MAX_PIXELS"):
        read_image(img)
    monkeypatch.setenv("FLOWDET_MAX_PIXELS", "lots")
    with pytest.raises(Exception, match="FLOWDET_MAX_PIXELS"):
        read_image(img)


@pytest.mark.timeout(120)
def test_predict_folder_skips_and_counts_each_and_keeps_results(cli, onnx64, ckpt64, tmp_path):
    src = _folder(tmp_path / "src")
    for model in (onnx64, ckpt64):
        out = tmp_path / f"out_{model.suffix[1:]}"
        res = cli("predict", src, "--model", model, "--out", out).ok()
        assert res.out.startswith(f"2 images ({len(HOSTILE)} unreadable, skipped)"), res.out
        for name, (_, reason) in HOSTILE.items():
            assert any(str(src / name) in ln and reason in ln for ln in res.err.splitlines()), (name, res.err)
        assert (out / "results.json").is_file() and len((out / "detections.jsonl").read_text().splitlines()) == 2
    cli("predict", src / "huge_header.jpg", "--model", onnx64, "--out", tmp_path / "o1").fails(
        "huge_header.jpg", "none of the 1 image(s) could be read")


@pytest.mark.timeout(120)
def test_stream_and_mine_on_a_folder_skip_and_count(cli, onnx64, tmp_path):
    src = _folder(tmp_path / "src")
    res = cli("stream", "--model", onnx64, src, "--jsonl", tmp_path / "d.jsonl").ok()
    assert "frames 2 " in res.out and f"skipped {len(HOSTILE)} unreadable image(s)" in res.err
    res = cli("mine", src, "--out", tmp_path / "mined", "--dedupe", 0).ok()
    assert "kept 2" in res.out and f"skipped {len(HOSTILE)} unreadable image(s)" in res.err


@pytest.mark.timeout(120)
def test_data_check_stats_and_coco2yolo_count_them(cli, tmp_path):
    root = tmp_path / "ds"
    names = ["ok0.jpg", "ok1.jpg", *HOSTILE]
    _folder(root / "images")
    ann = hostile.coco(root, images=names)
    res = cli("data", "check", ann).ok()
    for name, (_, reason) in HOSTILE.items():
        assert name in res.err and reason in res.err
    assert f"2/{len(names)} images" in res.out
    cli("data", "check", ann, "--strict").fails(str(ann))
    # stats decodes too: the decode-only kind (a valid header over garbage pixels) is not counted as fine
    res = cli("data", "stats", ann, "--json").ok()
    stats = json.loads(res.out)
    assert stats["images"] == 2 and stats["problems"] == len(HOSTILE)
    res = cli("convert", "coco2yolo", ann, "--out", tmp_path / "yolo").ok()  # coco2yolo decodes: all found
    assert f"2 of {len(names)} images" in res.out
    assert sorted(p.name for p in (tmp_path / "yolo" / "labels" / "train").iterdir()) == ["ok0.txt", "ok1.txt"]


@pytest.mark.timeout(120)
def test_eval_leaves_them_out_of_the_score_and_says_so(cli, onnx64, tmp_path):
    root = tmp_path / "ds"
    _folder(root / "images")
    ann = hostile.coco(root, images=["ok0.jpg", "ok1.jpg", *HOSTILE])
    res = cli("eval", "--model", onnx64, "--ann", ann).ok()
    assert "2 images scored" in res.out
    assert f"{len(HOSTILE) - 1} image(s) skipped" in res.err  # found by the header check at load
    assert "skipped 1 unreadable image" in res.err and "bad_pixels.png" in res.err  # found when decoded


def test_voc_and_yolo_converters_report_them(cli, tmp_path):
    from flowdet.data.voc import write_voc_xml

    imgs, anns = _folder(tmp_path / "images"), tmp_path / "xml"
    for name in ["ok0.jpg", *HOSTILE]:
        write_voc_xml(anns / f"{Path(name).stem}.xml", name, 96, 64, [("bottle", [10, 10, 20, 15], False)])
    res = cli("convert", "voc", anns, "--images", imgs, "--out", tmp_path / "voc.json").ok()
    # voc decodes each image (its real size): every hostile kind is skipped, each named
    assert "1 images" in res.out and res.err.count("(skipped)") == len(HOSTILE)
    assert "fifo.jpg: image: not a regular file" in res.err
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images\nnames: [bottle]\n")
    res = cli("convert", "yolo", tmp_path / "data.yaml", "--out", tmp_path / "y.json").ok()
    assert "2 images" in res.out and res.err.count("(skipped)") == len(HOSTILE)


@pytest.mark.timeout(120)
def test_export_parity_data_names_the_bad_image(cli, ckpt64, tmp_path):
    hostile.truncated_jpeg(tmp_path / "t.jpg")
    cli("export", "--ckpt", ckpt64, "--out", tmp_path / "m.onnx", "--parity-data", tmp_path / "t.jpg").fails(
        "t.jpg", "truncated JPEG")
    assert not (tmp_path / "m.onnx").exists()


def test_exif_rotation_is_the_decoded_size(tmp_path):
    """The header size must match what cv2 decodes, or a rotated phone photo would be 'mismatched'."""
    import struct

    import cv2

    from flowdet.core.imread import image_size, read_image

    jpg = hostile._jpeg_bytes(96, 64)
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    (tmp_path / "rot.jpg").write_bytes(jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:])
    h, w = read_image(tmp_path / "rot.jpg").shape[:2]
    assert image_size(tmp_path / "rot.jpg") == (w, h) == cv2.imread(str(tmp_path / "rot.jpg")).shape[1::-1]


def test_mine_says_it_skipped_a_fifo_named_like_a_video(cli, tmp_path):
    src = tmp_path / "src"
    for i in range(2):
        hostile.image(src / f"ok{i}.jpg", seed=i)
    hostile.fifo(src / "camera.mp4")
    res = cli("mine", src, "--out", tmp_path / "frames").ok()
    assert "not regular files" in res.err and "camera.mp4" in res.err
