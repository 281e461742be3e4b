"""Which frames export's parity check runs on by default: the checkpoint's own val images, else its
train images, else synthetic frames (saying why); spread over the set; never a file outside the
images folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from flowdet.export.parity_data import checkpoint_frames, frames_from, spread


def _names(ds: Path) -> list[str]:
    return [im["file_name"] for im in json.loads((ds / "annotations.json").read_text())["images"]]


def test_spread_covers_the_set():
    assert spread(8, 3) == [0, 4, 7]
    assert spread(2, 6) == [0, 1] and spread(0, 4) == [] and spread(5, 1) == [0]


def test_the_checkpoints_val_images_first_spread_over_the_set(synth_small, tmp_path):
    ann = str(synth_small / "annotations.json")
    fr = checkpoint_frames(tmp_path / "best.pt", {"data": {"train": ann, "val": ann}}, 3)
    assert fr.kind == "real" and fr.origin == "annotations.json (data.val)"
    names = _names(synth_small)
    assert fr.names == [names[0], names[4], names[7]] and len(fr.images) == 3
    assert fr.images[0].shape == (360, 640, 3)


def test_train_images_when_val_is_gone_then_synthetic(synth_small, tmp_path):
    ann = str(synth_small / "annotations.json")
    notes: list[str] = []
    fr = checkpoint_frames(tmp_path / "best.pt", {"data": {"train": ann, "val": "/gone/val.json"}}, 2, notes.append)
    assert fr.kind == "real" and fr.origin == "annotations.json (data.train)"
    fr = checkpoint_frames(tmp_path / "best.pt", {"data": {"train": "/gone/t.json", "val": "/gone/v.json"}}, 1)
    assert fr.kind == "synthetic" and len(fr.images) == 1
    assert "data.val /gone/v.json" in fr.origin and "data.train /gone/t.json" in fr.origin
    assert checkpoint_frames(tmp_path / "best.pt", None, 1).origin.endswith("records no training data")


def test_relative_paths_resolve_from_where_the_run_trained(synth_small, tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    (proj / "runs" / "a").mkdir(parents=True)
    (proj / "data").symlink_to(synth_small, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = {"out": "runs/a", "data": {"train": "data/annotations.json", "val": "data/annotations.json"}}
    fr = checkpoint_frames(proj / "runs" / "a" / "best.pt", cfg, 2)
    assert fr.kind == "real" and fr.origin == "annotations.json (data.val)"


def test_a_yaml_runs_own_val_split(synth_small, tmp_path):
    from flowdet.data.yolo import coco_to_yolo

    for split in ("train", "val"):
        coco_to_yolo(synth_small / "annotations.json", None, tmp_path / "yolo", split=split, copy=True)
    fr = checkpoint_frames(tmp_path / "best.pt", {"data": {"train": str(tmp_path / "yolo" / "data.yaml")}}, 2)
    assert fr.kind == "real" and fr.origin == "data.yaml (data.train's val split)" and len(fr.images) == 2


def test_a_file_name_outside_the_images_folder_is_never_read(synth_small, tmp_path, monkeypatch):
    from flowdet.data import coco_validate as coco_module  # the module that probes each image file

    opened: list[str] = []
    probe = coco_module.probe_image
    monkeypatch.setattr(coco_module, "probe_image", lambda path, *a: opened.append(str(path)) or probe(path, *a))
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    names = _names(synth_small)
    shutil.copy(synth_small / "images" / names[0], ds / "images" / "a.jpg")
    shutil.copy(synth_small / "images" / names[1], ds / "secret.jpg")  # readable, but outside images/
    coco = json.loads((synth_small / "annotations.json").read_text())
    coco["images"] = [{**coco["images"][0], "file_name": "a.jpg"}, {**coco["images"][1], "file_name": "../secret.jpg"}]
    coco["annotations"] = []
    (ds / "annotations.json").write_text(json.dumps(coco))
    notes: list[str] = []
    fr = checkpoint_frames(tmp_path / "best.pt", {"data": {"train": str(ds / "annotations.json")}}, 6, notes.append)
    assert fr.names == ["a.jpg"] and any("'../secret.jpg' is outside the images folder" in n for n in notes), notes
    assert frames_from(ds / "annotations.json", 6).names == ["a.jpg"]  # --parity-data: the same rule
    assert opened and not any("secret" in p for p in opened)  # not even its header
