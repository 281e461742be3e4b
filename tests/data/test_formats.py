"""Own data in one step: a YOLO data.yaml, a VOC folder, a YOLO folder export (classes.txt) or a COCO
json wherever a dataset is read; converted once and cached; `data check` finds images without --images."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli

from flowdet.data.formats import load_dataset, resolve_dataset
from flowdet.data.yolo import coco_to_yolo
from flowdet.errors import DataError


@pytest.fixture()
def yolo_ds(synth_small, tmp_path) -> Path:
    out = tmp_path / "yolo"
    coco_to_yolo(synth_small / "annotations.json", None, out, split="train", copy=True)
    coco_to_yolo(synth_small / "annotations.json", None, out, split="val", copy=True)
    return out


def test_data_yaml_is_read_everywhere_and_converted_once(yolo_ds, capsys):
    # Before: `data check data.yaml` (and train --data data.yaml) failed with "invalid JSON at line 1".
    code, err = run_cli(capsys, "data", "check", str(yolo_ds / "data.yaml"), "--no-decode")
    assert code == 0 and "converted once" in err
    code, err = run_cli(capsys, "data", "check", str(yolo_ds / "data.yaml"), "--no-decode")
    assert code == 0 and "cached conversion" in err and "converted once" not in err
    assert len(load_dataset(yolo_ds / "data.yaml", split="val").records) == 8
    # An edited label file means a new conversion, not a stale cache.
    lbl = next((yolo_ds / "labels" / "train").glob("*.txt"))
    lbl.write_text("")
    assert resolve_dataset(yolo_ds / "data.yaml") != resolve_dataset(yolo_ds / "data.yaml", "val")
    with pytest.raises(DataError, match="no 'test' split"):
        resolve_dataset(yolo_ds / "data.yaml", "test")


def test_a_read_only_dataset_is_converted_into_the_user_cache_never_into_itself(yolo_ds, tmp_path, monkeypatch):
    # Before: the conversion landed in yolo/.flowdet/ (a read-only or shared dataset got written into).
    import os
    import stat

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = sorted(p.relative_to(yolo_ds) for p in yolo_ds.rglob("*"))
    paths = [yolo_ds, *yolo_ds.rglob("*")]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        ds = load_dataset(yolo_ds / "data.yaml", split="val")
        cache = resolve_dataset(yolo_ds / "data.yaml", "val")
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert len(ds.records) == 8 and cache.parent == tmp_path / "cache" / "flowdet"
    assert sorted(p.relative_to(yolo_ds) for p in yolo_ds.rglob("*")) == before  # root writes anyway: listed
    assert os.access(cache, os.R_OK)


def test_data_check_checks_every_split_of_a_data_yaml_or_the_one_asked(yolo_ds, capsys):
    # Before: `data check data.yaml` checked the train split only, and --split did not exist.
    from flowdet.cli import main

    for argv, said in ((["--split", "val"], ["val"]), ([], ["train", "val"]), (["--split", "train"], ["train"])):
        main(["data", "check", str(yolo_ds / "data.yaml"), "--no-decode", *argv])
        out = capsys.readouterr().out
        assert [s for s in ("train", "val") if f"data.yaml split {s}: " in out] == said, out
    with pytest.raises(SystemExit) as e:
        main(["data", "check", str(yolo_ds / "data.yaml"), "--split", "test"])
    assert e.value.code == 2 and "no 'test' split" in capsys.readouterr().err


def test_what_a_conversion_skipped_is_reported_on_every_cached_load(yolo_ds, capsys):
    # Before: the first conversion said "1 problem(s) skipped"; every later `data check` (the cached
    # json) said 0 problems and --strict passed.
    from flowdet.cli import main

    bad = next((yolo_ds / "images" / "val").iterdir())
    bad.write_bytes(b"not a picture")
    for _ in range(2):  # converted, then cached
        with pytest.raises(SystemExit) as e:
            main(["data", "check", str(yolo_ds / "data.yaml"), "--split", "val", "--strict"])
        cap = capsys.readouterr()
        assert e.value.code == 2 and bad.name in cap.out + cap.err and "1 image(s) skipped" in cap.out, cap
    assert load_dataset(yolo_ds / "data.yaml", split="val").report.images_skipped == 1


def test_voc_folder_is_a_dataset(tmp_path):
    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    (tmp_path / "voc" / "JPEGImages").mkdir()
    cv2.imwrite(str(tmp_path / "voc" / "JPEGImages" / "a.jpg"), np.full((80, 100, 3), 90, np.uint8))
    (tmp_path / "voc" / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>100</width><height>80</height></size>"
        "<object><name>bottle</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>25</ymax>"
        "</bndbox></object></annotation>")
    ds = load_dataset(tmp_path / "voc")
    assert len(ds.records) == 1 and ds.names == ["bottle"] and len(ds.records[0].boxes) == 1


def test_convert_yolo_reads_a_classes_txt_folder(synth_small, tmp_path, capsys):
    # LabelImg / CVAT export: images with their .txt beside them and classes.txt, no data.yaml.
    src = tmp_path / "labelimg"
    src.mkdir()
    yolo = tmp_path / "y"
    coco_to_yolo(synth_small / "annotations.json", None, yolo, split="train", copy=True)
    for img in (yolo / "images" / "train").iterdir():
        shutil.copy(img, src / img.name)
        shutil.copy(yolo / "labels" / "train" / (img.stem + ".txt"), src / (img.stem + ".txt"))
    (src / "classes.txt").write_text("bottle\n")
    code, _ = run_cli(capsys, "convert", "yolo", str(src), "--out", str(tmp_path / "elsewhere" / "y_train.json"))
    assert code == 0
    coco = json.loads((tmp_path / "elsewhere" / "y_train.json").read_text())
    assert len(coco["images"]) == 8 and len(coco["annotations"]) > 0
    # Before: `data check y_train.json` reported every image missing and exited 0.
    code, err = run_cli(capsys, "data", "check", str(tmp_path / "elsewhere" / "y_train.json"))
    assert code == 0 and "not found" not in err


def test_data_check_exits_nonzero_when_nothing_is_usable(synth_small, tmp_path, capsys):
    data = json.loads((synth_small / "annotations.json").read_text())
    (tmp_path / "imgs").mkdir()
    (tmp_path / "moved.json").write_text(json.dumps(data))
    code, err = run_cli(capsys, "data", "check", str(tmp_path / "moved.json"), "--images", str(tmp_path / "imgs"))
    assert code == 2 and "no usable image" in err


def test_data_split_groups_scenes_and_is_seeded(tmp_path, capsys):
    from flowdet.utils import atomic_write_json

    (tmp_path / "images").mkdir()
    images, anns = [], []
    for cam in range(5):
        for f in range(4):
            name = f"cam{cam}_{f:06d}.jpg"
            cv2.imwrite(str(tmp_path / "images" / name), np.zeros((8, 8, 3), np.uint8))
            images.append({"id": len(images) + 1, "file_name": name, "width": 8, "height": 8})
            anns.append({"id": len(anns) + 1, "image_id": len(images), "category_id": 1, "bbox": [1, 1, 3, 3],
                         "area": 9, "iscrowd": 0})
    atomic_write_json(tmp_path / "all.json", {"images": images, "annotations": anns,
                                              "categories": [{"id": 1, "name": "bottle"}]})
    args = ["data", "split", str(tmp_path / "all.json"), "--group-by", "video", "--val", "0.4", "--seed", "1"]
    assert run_cli(capsys, *args, "--out", str(tmp_path / "s"))[0] == 0
    tr, va = (json.loads((tmp_path / "s" / f"{n}.json").read_text()) for n in ("train", "val"))
    cams = [{im["file_name"][:4] for im in part["images"]} for part in (tr, va)]
    assert not cams[0] & cams[1] and len(cams[1]) == 2 and len(tr["images"]) + len(va["images"]) == 20
    assert all(a["image_id"] in {im["id"] for im in va["images"]} for a in va["annotations"])
    assert run_cli(capsys, *args, "--out", str(tmp_path / "s2"))[0] == 0  # same seed, same split
    assert (tmp_path / "s2" / "val.json").read_text() == (tmp_path / "s" / "val.json").read_text()
    # The split files work from their own folder (images root recorded).
    assert len(load_dataset(tmp_path / "s" / "val.json").records) == 8
