"""Files of the right name and the wrong content: non-UTF-8 lists and labels, checkpoints whose fields
have the wrong types, numbers past Python's 4300-digit limit, corrupt resume state, COCO ``images``
that are not objects, seeds numpy refuses, a synthetic frame of 900 MP. Each was a traceback (or a
hang); each is now one ``Error:`` line naming file and field, or a counted skip."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness import hostile

torch = pytest.importorskip("torch")

LATIN1 = "bouteille\nd\xe9chet\n".encode("latin-1")  # "déchet" in Latin-1: byte 0xe9 is not UTF-8


def test_non_utf8_lists_labels_and_classes(cli, tmp_path):
    # VOC --labels
    ann, img = tmp_path / "voc" / "Annotations", tmp_path / "voc" / "JPEGImages"
    ann.mkdir(parents=True)
    hostile.image(img / "a.jpg")
    (ann / "a.xml").write_text("<annotation><filename>a.jpg</filename><object><name>bouteille</name><bndbox>"
                               "<xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>25</ymax></bndbox></object>"
                               "</annotation>")
    (tmp_path / "labels.txt").write_bytes(LATIN1)
    cli("convert", "voc", ann, "--images", img, "--labels", tmp_path / "labels.txt",
        "--out", tmp_path / "v.json").fails("labels.txt", "not UTF-8", "line 2")
    # YOLO folder: classes.txt
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    hostile.image(yolo / "a.jpg")
    hostile.image(yolo / "b.jpg", seed=1)
    (yolo / "classes.txt").write_bytes(LATIN1)
    cli("convert", "yolo", yolo, "--out", tmp_path / "y.json").fails("classes.txt", "not UTF-8")
    # one label file: that image skipped and counted, the others converted
    (yolo / "classes.txt").write_text("bottle\n")
    (yolo / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (yolo / "b.txt").write_bytes(b"0 0.5 0.5 0.2 0.2 \xff\xfe\n")
    res = cli("convert", "yolo", yolo, "--out", tmp_path / "y.json").ok()
    assert "b.txt" in res.err and "not UTF-8" in res.err
    assert [im["file_name"] for im in json.loads((tmp_path / "y.json").read_text())["images"]] == ["a.jpg"]
    # a data.yaml split given as a list file
    (tmp_path / "list.txt").write_bytes(b"yolo/a.jpg\nyolo/b\xe9.jpg\n")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: list.txt\nnames: [bottle]\n")
    cli("convert", "yolo", tmp_path / "data.yaml", "--out", tmp_path / "l.json").fails("list.txt", "not UTF-8")


# ------------------------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def resumable(tmp_path_factory) -> Path:
    """A real last.pt of one epoch at 64 px (two images, one step)."""
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig
    from flowdet.detect.train import train

    root = tmp_path_factory.mktemp("resumable")
    ann = hostile.coco(root / "ds", n=2)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_config(DetectConfig, None, [f"data.train={ann}", f"out={root / 'run'}", "model.size=nano",
                                               "train.img_size=64", "train.batch=2", "train.epochs=2",
                                               "train.workers=0", "train.progress=false", "train.device=cpu",
                                               "train.eval_interval=100", "augment.no_aug_epochs=0"]),
              on_epoch_end=lambda epoch, row: _stop())
    except KeyboardInterrupt:
        pass
    finally:
        torch.set_num_threads(n)
    return root / "run" / "last.pt"


def _stop() -> None:
    raise KeyboardInterrupt  # after epoch 1: a resumable last.pt, as Ctrl-C leaves it


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("field,value,needle", [
    ("epoch", "5", "'epoch' must be a whole number"), ("best_ap", None, "'best_ap' must be a finite number"),
    ("model_cfg", [1], "'model_cfg'"), ("metrics", [1, 2], "'metrics'"),
    ("rng", {"python": 1}, "'rng' is not a random-generator state"),
])
def test_resume_from_a_checkpoint_with_wrongly_typed_fields(cli, resumable, tmp_path, field, value, needle):
    ck = torch.load(resumable, weights_only=True)
    ck[field] = value
    bad = tmp_path / "last.pt"
    torch.save(ck, bad)
    cli("train", "--resume", bad).fails(str(bad), needle)


# ------------------------------------------------------------------------ numbers, state, json

BIG = "1" * 5000  # past Python's 4300-digit int/str limit: int() and repr() raise ValueError


@pytest.mark.timeout(300)
def test_a_5000_digit_number_in_a_config_or_flag(cli, onnx64, tmp_path):
    (tmp_path / "c.yaml").write_text(f"train:\n  epochs: {BIG}\n")
    cli("train", "--config", tmp_path / "c.yaml").fails("c.yaml", "too long")
    ann = hostile.coco(tmp_path / "ds")
    cli("train", "--data", ann, "--out", tmp_path / "run", "--set", f"train.epochs={BIG}").fails("train.epochs")
    cli("train", "--data", ann, "--out", tmp_path / "run", "--epochs", BIG).fails("--epochs", "5000 characters")
    (tmp_path / "s.yaml").write_text(f"sources:\n  - {BIG}\n")
    cli("stream", "--model", onnx64, "--sources", tmp_path / "s.yaml").fails("s.yaml", "too long")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", ["{not json", "[]", '{"a.mp4": 5}', '{"a.mp4": {"params": [1]}}'])
def test_mine_corrupt_state_is_one_line(cli, tmp_path, content):
    frames = tmp_path / "frames"
    hostile.image(frames / "0.jpg")
    out = tmp_path / "mined"
    out.mkdir()
    (out / "sources.json").write_text(content)
    cli("mine", frames, "--out", out).fails("sources.json", "not a `flowdet mine` state file")


@pytest.mark.parametrize("line", ['{"source": 1, "frame": 0, "path": "x.jpg"}', '{"source": "a", "frame": "0", '
                                  '"path": "x.jpg"}', "[1, 2]", '{"source": "a"}', "not json", '{"frame": ' + BIG + "}"])
def test_mine_and_pretrain_on_a_corrupt_manifest_line(cli, tmp_path, line):
    frames = tmp_path / "frames"
    hostile.image(frames / "0.jpg")
    out = tmp_path / "mined"
    cli("mine", frames, "--out", out).ok()
    good = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(line + "\n" + good)
    cli("mine", frames, "--out", out).fails("manifest.jsonl", "line 1: not a manifest record")
    cli("pretrain", "--method", "byol", "--frames", out, "--out", tmp_path / "p").fails("line 1")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("content", ["{bad", "[]", '{"points": []}', '{"points": {"x": 1}}',
                                     '{"pretrain": {"self-emd": {"backbone": 5}}}'])
def test_efficiency_corrupt_results_on_resume(cli, tmp_path, content):
    ann = hostile.coco(tmp_path / "ds")
    (tmp_path / "eff").mkdir()
    (tmp_path / "eff" / "results.json").write_text(content)
    cli("efficiency", "--data", ann, "--val", ann, "--kinds", "scratch", "--fractions", "1", "--epochs", 1,
        "--out", tmp_path / "eff").fails("results.json", "not a `flowdet efficiency` results file")


@pytest.mark.timeout(300)
def test_coco_images_that_are_strings(cli, onnx64, tmp_path):
    ann = hostile.coco(tmp_path / "ds")
    data = json.loads(ann.read_text())
    data["images"] = ["im0.jpg", "im1.jpg"]
    ann.write_text(json.dumps(data))
    for args in (["data", "split", ann, "--out", tmp_path / "sp"],
                 ["pretrain", "--method", "byol", "--frames", ann, "--out", tmp_path / "p"],
                 ["predict", tmp_path / "ds" / "images", "--model", onnx64, "--ann", ann, "--out", tmp_path / "pr"],
                 ["efficiency", "--data", ann, "--val", ann, "--kinds", "scratch", "--fractions", "0.5",
                  "--epochs", 1, "--out", tmp_path / "eff"]):
        cli(*args).fails("ann.json", "images[0]")
    for args in (["data", "check", ann], ["convert", "coco2yolo", ann, "--out", tmp_path / "y"]):
        assert "Traceback" not in cli(*args).err  # the validators skip and count such entries


@pytest.mark.timeout(180)
def test_synth_seed_and_a_900_megapixel_frame(cli, tmp_path):
    from flowdet.data.synth import SynthConfig, generate
    from flowdet.errors import InputError

    cli("synth", tmp_path / "s", "--images", 1, "--size", "30000x30000").fails("30000x30000", "over the 64 MP")
    with pytest.raises(InputError, match="--seed"):  # the Python API too, not only the flag
        generate(tmp_path / "s2", SynthConfig(num_images=1, width=320, height=192, seed=-1))
    assert not (tmp_path / "s" / "annotations.json").exists()
