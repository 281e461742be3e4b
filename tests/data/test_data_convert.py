"""Converters: VOC → COCO (1-based pixels, difficult, missing size), COCO ↔ YOLO, round trips exact."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from flowdet.data.coco import load_coco
from flowdet.data.voc import voc_to_coco, write_voc_xml
from flowdet.data.yolo import coco_to_yolo, yolo_to_coco
from flowdet.errors import DataError

W, H = 100, 80


def _voc_xml(filename: str, objects: list[tuple[str, tuple, int]], size: bool = True) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objects)
    sz = f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size>" if size else ""
    return f"<annotation><folder>x</folder><filename>{filename}</filename>{sz}{objs}</annotation>"


@pytest.fixture()
def voc(tmp_path: Path) -> Path:
    """FloW-Img-like VOC: images/ + annotations/ with bottles, a difficult one, one xml without <size>."""
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "images" / f"f{i}.jpg"), np.full((H, W, 3), 90 + 20 * i, np.uint8))
    xmls = {
        "f0": _voc_xml("f0.jpg", [("bottle", (1, 1, 10, 20), 0), ("bottle", (30.5, 40.25, 47.75, 52), 0),
                                  ("bottle", (60, 10, 70, 15), 1)]),
        "f1": _voc_xml("f1.jpg", [("bottle", (5, 6, 100, 80), 0), ("bottle", (90, 70, 120, 95), 0)], size=False),
        "f2": _voc_xml("f2.jpg", []),
    }
    for stem, text in xmls.items():
        (tmp_path / "annotations" / f"{stem}.xml").write_text(text)
    return tmp_path


def test_voc_conventions(voc):
    coco, report = voc_to_coco(voc / "annotations", voc / "images")
    assert coco["categories"] == [{"id": 1, "name": "bottle"}]
    assert [im["file_name"] for im in coco["images"]] == ["f0.jpg", "f1.jpg", "f2.jpg"]
    assert coco["images"][1]["width"] == W and coco["images"][1]["height"] == H  # read from the image
    boxes = [a["bbox"] for a in coco["annotations"]]
    assert boxes[0] == [0.0, 0.0, 10.0, 20.0]           # xmin-1, w = xmax-xmin+1
    assert boxes[1] == [29.5, 39.25, 18.25, 12.75]
    assert [a["difficult"] for a in coco["annotations"]] == [0, 0, 1, 0, 0]
    assert all(a["iscrowd"] == 0 for a in coco["annotations"])
    assert boxes[4] == [89.0, 69.0, 11.0, 11.0] and report.boxes_clipped == 1  # clipped to 100x80
    assert boxes[3] == [4.0, 5.0, 96.0, 75.0]              # touching the border is not clipped


def test_voc_labels_and_missing_image(voc):
    (voc / "annotations" / "f9.xml").write_text(_voc_xml("gone.jpg", [("bottle", (1, 1, 5, 5), 0)]))
    (voc / "annotations" / "f0.xml").write_text(_voc_xml("f0.jpg", [("can", (1, 1, 5, 5), 0), ("bottle", (2, 2, 3, 3), 0)]))
    coco, report = voc_to_coco(voc / "annotations", voc / "images", labels=["bottle"])
    text = "\n".join(map(str, report.problems))
    assert "'can' not in the labels" in text and "gone.jpg" in text
    assert report.images_skipped == 1 and report.boxes_dropped == 1


def test_voc_malformed_xml(voc):
    (voc / "annotations" / "f0.xml").write_text("<annotation><object></annotation>")
    coco, report = voc_to_coco(voc / "annotations", voc / "images")  # the other files still convert
    assert report.images_skipped == 1 and "f0.xml: xml: invalid XML at line 1" in str(report.problems[0])
    assert len(coco["images"]) == report.images_total - 1
    with pytest.raises(DataError, match=r"f0.xml: xml: invalid XML at line 1"):
        report.raise_if(True)  # --strict


def test_round_trip_voc_coco_yolo_coco(voc, tmp_path):
    coco, _ = voc_to_coco(voc / "annotations", voc / "images")
    ann = tmp_path / "from_voc.json"
    ann.write_text(json.dumps(coco))
    ds = load_coco(ann, voc / "images")
    assert [r.ignore.tolist() for r in ds.records][0] == [False, False, True]

    yaml_path, report = coco_to_yolo(ann, voc / "images", tmp_path / "yolo", split="train")
    linked = tmp_path / "yolo" / "images" / "train" / "f0.jpg"
    # a hard link: the dataset holds the file itself, so reading it back stays inside it (flowdet.paths)
    assert report.ok and not linked.is_symlink() and linked.samefile(voc / "images" / "f0.jpg")
    data = yaml.safe_load(yaml_path.read_text())
    assert data["names"] == {0: "bottle"} and data["train"] == data["val"] == "images/train"

    back, root, report = yolo_to_coco(yaml_path, "train")
    assert report.ok and root == (tmp_path / "yolo").resolve()
    want = {im["file_name"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        if not a["difficult"]:  # YOLO has no ignore flag: difficult boxes are left out
            want[next(im["file_name"] for im in coco["images"] if im["id"] == a["image_id"])].append(a["bbox"])
    got = {im["file_name"].removeprefix("images/train/"): [] for im in back["images"]}
    for a in back["annotations"]:
        got[next(im["file_name"] for im in back["images"] if im["id"] == a["image_id"]).removeprefix("images/train/")].append(a["bbox"])
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(np.array(got[name]).reshape(-1, 4), np.array(want[name]).reshape(-1, 4), atol=1e-6, rtol=0)

    # and back to VOC: write_voc_xml is the inverse of the 1-based convention
    im = coco["images"][0]
    objs = [("bottle", a["bbox"], bool(a["difficult"])) for a in coco["annotations"] if a["image_id"] == im["id"]]
    write_voc_xml(tmp_path / "voc2" / "f0.xml", im["file_name"], im["width"], im["height"], objs)
    again, _ = voc_to_coco(tmp_path / "voc2", voc / "images")
    assert [a["bbox"] for a in again["annotations"]] == [o[1] for o in objs]


def test_coco2yolo_merges_splits_and_copies(synth_small, tmp_path):
    out = tmp_path / "y"
    coco_to_yolo(synth_small / "annotations.json", None, out, split="train", copy=True)
    yaml_path, _ = coco_to_yolo(synth_small / "annotations.json", None, out, split="val")
    data = yaml.safe_load(yaml_path.read_text())
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert not (out / "images" / "train" / "000001.jpg").is_symlink()
    n_labels = sum(len(p.read_text().splitlines()) for p in (out / "labels" / "val").glob("*.txt"))
    assert n_labels == len(json.loads((synth_small / "annotations.json").read_text())["annotations"])


def test_yolo_label_lines(tmp_path):
    root = tmp_path / "ds"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "val" / "a.png"), np.zeros((H, W, 3), np.uint8))
    (root / "labels" / "val" / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.25\n"            # box
        "1 0.1 0.1 0.3 0.1 0.2 0.4\n"     # polygon → its bounding box
        "5 0.5 0.5 0.1 0.1\n"             # unknown class
        "0 nan 0.5 0.1 0.1\n"             # not finite
        "0 0.5 0.5 0 0.1\n"               # empty
        "0 0.95 0.5 0.2 0.2\n")           # sticks out → clipped
    (tmp_path / "data.yaml").write_text("path: ds\nval: images/val\nnames: [bottle, can]\n")
    coco, _, report = yolo_to_coco(tmp_path / "data.yaml", "val")
    boxes = [a["bbox"] for a in coco["annotations"]]
    np.testing.assert_allclose(boxes[0], [40, 30, 20, 20])
    np.testing.assert_allclose(boxes[1], [10, 8, 20, 24])
    assert coco["annotations"][1]["category_id"] == 2
    np.testing.assert_allclose(boxes[2], [85, 32, 15, 16])
    assert report.boxes_dropped == 3 and report.boxes_clipped == 1
    with pytest.raises(DataError, match="no 'train' split"):
        yolo_to_coco(tmp_path / "data.yaml", "train")
