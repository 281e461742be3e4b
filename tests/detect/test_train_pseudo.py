"""`flowdet train --pseudo`: pseudo-label output joins the training set (boxes and ignore regions), bad
input is one line naming the file and field, val images warn (transductive) and --exclude refuses them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from cli_helpers import exit_code  # noqa: E402

from flowdet.config import load_config  # noqa: E402
from flowdet.data.formats import load_dataset  # noqa: E402
from flowdet.detect.config import DetectConfig  # noqa: E402
from flowdet.detect.train_pseudo import add_pseudo  # noqa: E402
from flowdet.errors import DataError  # noqa: E402


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    """(a labeled synthetic set, a pseudo-label folder as `flowdet pseudo-label` writes it: 6 new images
    and 2 of the labeled set's, each image's first box kept and the others ignore regions)."""
    from flowdet.data.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("pseudo_synth")
    kw = dict(width=192, height=160, min_size=10, max_size=40, objects_per_image=(2, 3),
              distractors_per_image=(0, 1), empty_fraction=0.0)
    generate(root / "lab", SynthConfig(num_images=4, seed=1, **kw))
    generate(root / "unl", SynthConfig(num_images=6, seed=2, **kw))
    out = root / "pl"
    images, anns = [], []
    for src, names in (("unl", [f"{i:06d}.jpg" for i in range(1, 7)]), ("lab", ["000001.jpg", "000002.jpg"])):
        truth = json.loads((root / src / "annotations.json").read_text())
        ids = {im["file_name"]: im["id"] for im in truth["images"]}
        (out / "images" / src).mkdir(parents=True)
        for name in names:
            os.link(root / src / "images" / name, out / "images" / src / name)
            images.append({"id": len(images) + 1, "file_name": f"{src}/{name}", "width": 192, "height": 160,
                           "source": src, "frame": ids[name]})
            boxes = [a for a in truth["annotations"] if a["image_id"] == ids[name]]
            for k, a in enumerate(boxes):
                anns.append({"id": len(anns) + 1, "image_id": len(images), "category_id": 1, "bbox": a["bbox"],
                             "area": a["area"], "iscrowd": int(k > 0), "score": 0.9, "track_id": None,
                             "source": "detection"})
    (out / "pseudo.json").write_text(json.dumps({"info": {"images_dir": "images"}, "images": images,
                                                 "annotations": anns, "categories": truth["categories"]}))
    return root / "lab", out


def test_pseudo_images_join_the_training_set_with_their_boxes_and_ignore_regions(sets):
    from flowdet.core.defaults import IGNORE_CLASS
    from flowdet.data.dataset import DetectionDataset
    from flowdet.data.transforms import AugmentConfig

    lab, pl = sets
    train = load_dataset(lab / "annotations.json")
    pseudo = json.loads((pl / "pseudo.json").read_text())
    n_ign = sum(a["iscrowd"] for a in pseudo["annotations"])
    for src in (pl, pl / "pseudo.json"):  # the folder or its json
        merged, paths, added = add_pseudo([str(src)], train)
        assert paths == [str(pl / "pseudo.json")] and len(merged.records) == 4 + 8
        assert added == [{"json": str(pl / "pseudo.json"), "images": 8, "boxes": 8, "ignores": n_ign}]
        assert len({r.image_id for r in merged.records}) == 12 and merged.records[:4] == train.records
    ds = DetectionDataset(merged.records, (160, 192), AugmentConfig(), augment=False)
    _, target, _, _ = ds[4]
    assert (target[:, 0] == 0).sum() == 1 and (target[:, 0] == IGNORE_CLASS).sum() >= 1


def test_what_pseudo_label_writes_is_what_train_pseudo_reads(sets, tmp_path):
    """The contract between the two verbs: `flowdet pseudo-label`'s own output (a scripted teacher over a
    tiny video: track boxes, gap fills, one ignore region) joins a labeled set as its summary counts it."""
    from pseudo_helpers import ScriptedTeacher, write_video

    from flowdet.pseudo.label import pseudo_label

    lab, _ = sets
    write_video(tmp_path / "video.mp4", 20)
    teacher = ScriptedTeacher(miss={10: [0]}, false={5: [((100, 5, 110, 15), 0.8)]})
    t = pseudo_label(teacher, [tmp_path / "video.mp4"], tmp_path / "pl")["totals"]
    merged, _, [added] = add_pseudo([str(tmp_path / "pl")], load_dataset(lab / "annotations.json"))
    assert (added["images"], added["boxes"], added["ignores"]) == (20, t["kept"] + t["filled"], t["ignored"])
    assert added["ignores"] == 1 and all(r.file.is_file() for r in merged.records[4:])


def test_bad_pseudo_input_is_one_error_naming_the_file_and_field(sets, tmp_path):
    lab, pl = sets
    train = load_dataset(lab / "annotations.json")
    with pytest.raises(DataError, match=f"^{tmp_path / 'nothing'}: data.pseudo: not found"):
        add_pseudo([str(tmp_path / "nothing")], train)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path / 'empty' / 'pseudo.json'}: data.pseudo: not found"):
        add_pseudo([str(tmp_path / "empty")], train)
    data = json.loads((pl / "pseudo.json").read_text())
    bad = pl / "bad.json"  # beside pseudo.json: its images folder is the same
    data["images"][3]["file_name"] = "unl/gone.jpg"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match=f"^{bad}: images: 1 of 8 images not usable .* images.3. .*not found"):
        add_pseudo([str(bad)], train)
    data = json.loads((pl / "pseudo.json").read_text())
    data["categories"] = [{"id": 1, "name": "leaf"}]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match=f"^{bad}: categories: category 1 'leaf' is not one of"):
        add_pseudo([str(bad)], train)
    bad.unlink()


def _args(lab: Path, pl: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", f"{lab}/annotations.json", "--val", f"{lab}/annotations.json", "--pseudo", str(pl),
            "--out", str(out), "--size", "nano", "--img-size", "64", "--batch", "4", "--epochs", "1",
            "--workers", "0", "--seed", "3", "--set", "train.progress=false", *extra]


def test_train_with_pseudo_records_it_warns_on_val_images_and_exclude_refuses(sets, tmp_path, capsys):
    lab, pl = sets
    assert exit_code(_args(lab, pl, tmp_path / "r1", "--exclude", f"{lab}/annotations.json")) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and "2 of 8 pseudo-labelled images are images of the excluded set" in err[0], err
    assert "remove them from --pseudo" in err[0] and not (tmp_path / "r1" / "last.pt").exists()
    assert exit_code(_args(lab, tmp_path / "none", tmp_path / "r2")) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and "data.pseudo: not found" in err[0], err

    assert exit_code(_args(lab, pl, tmp_path / "r3")) == 0  # the new-camera protocol: allowed, said once
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if "transductive" in ln]
    assert len(warn) == 1 and "2 of 8 pseudo-labelled images are --val images" in warn[0]
    assert "+8 images, 8 boxes" in err and "training nano at 64x64 on 12 images" in err
    text = (tmp_path / "r3" / "config.yaml").read_text()
    assert text.rstrip().splitlines()[-1].startswith(f"# --pseudo {pl / 'pseudo.json'}: +8 images, 8 boxes, ")
    assert load_config(DetectConfig, tmp_path / "r3" / "config.yaml", []).data.pseudo == [str(pl / "pseudo.json")]
