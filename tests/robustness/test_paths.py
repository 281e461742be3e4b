"""Nothing read or written outside the folders a user named (flowdet.paths), YAML that cannot expand
(flowdet.safe_yaml), error lines of a sane length.

Every reader that maps a name from a file is given the four ways out of its root — a ``../`` name,
an absolute name, a symlink inside the root pointing out, and a redirect written in the file
itself — towards ``private/secret.jpg``, a valid 80×48 image no test names as a root. It must
never be kept, copied, linked or listed; the refusals are counted skips (or one error line).
"""
from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from robustness import hostile

MAX_ERROR_LINE = 600  # "Error: " + flowdet.errors.MAX_LINE (500), with room to spare


@pytest.fixture
def secret(tmp_path) -> Path:
    """The file outside every root: a valid image of a size no other test image has."""
    return hostile.image(tmp_path / "private" / "secret.jpg", w=80, h=48, seed=9)


def _ways_out(root: Path, secret: Path) -> list[str]:
    """A ``../`` name, an absolute name and a symlink inside ``root`` — all reaching ``secret``."""
    os.symlink(secret, root / "link.jpg")
    return [os.path.relpath(secret, root), str(secret), "link.jpg"]


def _nothing_of(secret: Path, folder: Path) -> None:
    """No file under ``folder`` is ``secret``, a link to it or a copy of it."""
    data = secret.read_bytes()
    for p in folder.rglob("*"):
        assert not (p.is_symlink() and Path(os.path.realpath(p)) == secret.resolve()), p
        if p.is_file():
            assert not p.samefile(secret) and p.read_bytes() != data, p


def _with_images(ann: Path, names: list[str]) -> None:
    data = json.loads(ann.read_text())
    data["images"] += [{"id": 100 + i, "file_name": n, "width": 80, "height": 48} for i, n in enumerate(names)]
    data["annotations"] += [{"id": 100 + i, "image_id": 100 + i, "category_id": 1, "bbox": [5, 5, 10, 10],
                             "area": 100, "iscrowd": 0} for i in range(len(names))]
    ann.write_text(json.dumps(data))


# ------------------------------------------------------------------------------------ COCO json

def test_data_check_keeps_no_image_outside_the_images_folder(cli, tmp_path, secret):
    from flowdet.data.formats import load_dataset

    root = tmp_path / "ds"
    ann = hostile.coco(root, n=2)
    _with_images(ann, _ways_out(root / "images", secret))
    res = cli("data", "check", ann, "--images", root / "images").ok()
    assert res.err.count("outside the images folder") == 3, res.err
    assert "2/5 images" in res.out
    ds = load_dataset(ann, root / "images", check_images=False)
    assert [r.file.name for r in ds.records] == ["im0.jpg", "im1.jpg"]


@pytest.mark.parametrize("absolute", [True, False])
def test_a_json_redirect_out_of_its_folder_is_not_followed(cli, tmp_path, secret, absolute):
    root = tmp_path / "ds"
    ann = hostile.coco(root, n=2)
    data = json.loads(ann.read_text())
    data["info"] = {"images_dir": str(secret.parent) if absolute else os.path.relpath(secret.parent, root)}
    data["images"][0].update(file_name="secret.jpg", width=80, height=48)
    ann.write_text(json.dumps(data))
    res = cli("data", "check", ann).ok()
    assert "not followed" in res.err and "1/2 images" in res.out  # im1 from ds/images; secret.jpg not found
    res = cli("convert", "coco2yolo", ann, "--out", tmp_path / "y", "--copy").ok()
    assert "1 of 2 images" in res.out
    _nothing_of(secret, tmp_path / "y")


def test_a_redirect_flowdet_wrote_is_followed(cli, tmp_path):
    """The README flow: `data split labels/ --out splits/`, then `data check splits/train.json`
    without --images — the split recorded the images folder the user named."""
    ann = hostile.coco(tmp_path / "ds", n=4)
    cli("data", "split", ann, "--out", tmp_path / "splits", "--val", "0.5").ok()
    res = cli("data", "check", tmp_path / "splits" / "train.json").ok()
    assert "2/2 images" in res.out and "not followed" not in res.err
    # the same json edited by someone else is no longer vouched for
    edited = tmp_path / "splits" / "train.json"
    edited.write_text(edited.read_text() + " ")
    assert "not followed" in cli("data", "check", edited).err


# ----------------------------------------------------------------------------------- coco2yolo

@pytest.mark.parametrize("copy", [True, False])
def test_coco2yolo_copies_and_links_nothing_from_outside(cli, tmp_path, secret, copy):
    root = tmp_path / "ds"
    ann = hostile.coco(root, n=2)
    _with_images(ann, _ways_out(root / "images", secret))
    out = tmp_path / "yolo"
    res = cli("convert", "coco2yolo", ann, "--images", root / "images", "--out", out, *(["--copy"] * copy)).ok()
    assert "2 of 5 images" in res.out and res.err.count("outside the images folder") == 3
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["im0.jpg", "im1.jpg"]
    _nothing_of(secret, out)
    # the dataset written holds its images itself: read back, nothing leads out of it
    res = cli("convert", "yolo", out / "data.yaml", "--out", tmp_path / "back.json").ok()
    assert "2 images" in res.out


@pytest.mark.parametrize("split", ["../../escaped", "ABS", "a/b", "..", "."])
def test_coco2yolo_split_is_a_plain_name(cli, tmp_path, split):
    ann = hostile.coco(tmp_path / "ds", n=2)
    split = str(tmp_path / "abs_split") if split == "ABS" else split
    out = tmp_path / "deep" / "er" / "yolo"
    def outside_out() -> set[Path]:
        return {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)}

    before = outside_out()
    cli("convert", "coco2yolo", ann, "--out", out, "--split", split).fails("--split")
    assert outside_out() == before


def test_coco2yolo_writes_nothing_through_a_linked_folder_in_out(cli, tmp_path):
    ann = hostile.coco(tmp_path / "ds", n=2)
    out, elsewhere = tmp_path / "yolo", tmp_path / "elsewhere"
    (out / "images").mkdir(parents=True)
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "images" / "train")  # an existing --out someone prepared
    res = cli("convert", "coco2yolo", ann, "--out", out).ok()
    assert "0 of 2 images" in res.out and "linked folder" in res.err
    assert list(elsewhere.iterdir()) == []


# ----------------------------------------------------------------------------------------- VOC

def test_convert_voc_reads_no_filename_outside_the_images_folder(cli, tmp_path, secret):
    images, anns = tmp_path / "voc" / "images", tmp_path / "voc" / "ann"
    hostile.image(images / "good.jpg")
    hostile.voc_xml(anns / "good.xml", "good.jpg")
    for i, name in enumerate(_ways_out(images, secret)):
        hostile.voc_xml(anns / f"x{i}.xml", name, 80, 48)
    out = tmp_path / "voc.json"
    res = cli("convert", "voc", anns, "--images", images, "--out", out).ok()
    assert res.err.count("outside the images folder") == 3, res.err
    data = json.loads(out.read_text())
    assert [im["file_name"] for im in data["images"]] == ["good.jpg"]
    assert "secret" not in out.read_text()


# ---------------------------------------------------------------------------------------- YOLO

def test_yolo_dataset_reads_nothing_outside_its_folder(cli, tmp_path, secret):
    ds = tmp_path / "yolo"
    for name in ("a", "b"):
        hostile.image(ds / "images" / f"{name}.jpg")
    (ds / "labels").mkdir()
    (ds / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    passwd = tmp_path / "private" / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(passwd, ds / "labels" / "b.txt")  # a label file that is someone's secret
    os.symlink(secret, ds / "images" / "link.jpg")
    (ds / "list.txt").write_text(f"images/a.jpg\n{secret}\n{os.path.relpath(secret, ds)}\n")
    (ds / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "val": "list.txt",
                                                  "names": ["bottle"]}))
    for split, skipped in (("train", 2), ("val", 2)):
        out = tmp_path / f"{split}.json"
        res = cli("convert", "yolo", ds / "data.yaml", "--split", split, "--out", out).ok()
        assert "root:x" not in res.err + out.read_text()
        assert [im["file_name"] for im in json.loads(out.read_text())["images"]] == ["images/a.jpg"], res.err
        assert res.err.count("outside the dataset root") == skipped, res.err
    # the yaml's own redirects: a split folder out is refused; a dataset root out is not followed —
    # the yaml's own folder is used when it holds the splits (a moved dataset), else refused
    (ds / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": str(secret.parent), "names": ["bottle"]}))
    cli("convert", "yolo", ds / "data.yaml", "--out", tmp_path / "x.json").fails("train")
    assert not (tmp_path / "x.json").exists()
    for value in (str(secret.parent), os.path.relpath(secret.parent, ds)):
        (ds / "data.yaml").write_text(yaml.safe_dump({"path": value, "train": "images", "names": ["bottle"]}))
        res = cli("convert", "yolo", ds / "data.yaml", "--out", tmp_path / "x.json").ok()
        assert "not followed" in res.err and "root:x" not in (tmp_path / "x.json").read_text()
        assert [im["file_name"] for im in json.loads((tmp_path / "x.json").read_text())["images"]] == ["images/a.jpg"]
        (tmp_path / "x.json").unlink()
        (ds / "data.yaml").write_text(yaml.safe_dump({"path": value, "train": "elsewhere", "names": ["bottle"]}))
        cli("convert", "yolo", ds / "data.yaml", "--out", tmp_path / "x.json").fails("path")
        assert not (tmp_path / "x.json").exists()


# ------------------------------------------------------------------------------ pretrain frames

def test_pretrain_frames_reads_nothing_outside_the_folder_or_list(tmp_path, secret):
    from flowdet.mine.frames import resolve_frames

    frames = tmp_path / "frames"
    good = hostile.image(frames / "f0.jpg")
    names = _ways_out(frames, secret)
    (frames / "manifest.jsonl").write_text("".join(json.dumps({"source": "v", "frame": i, "path": n}) + "\n"
                                                   for i, n in enumerate(["f0.jpg", *names])))
    assert resolve_frames([str(frames)]) == [good.resolve()]  # the manifest
    assert resolve_frames([str(frames / "manifest.jsonl")]) == [good.resolve()]
    (frames / "manifest.jsonl").unlink()
    assert resolve_frames([str(frames)]) == [good.resolve()]  # the folder: link.jpg points out
    (frames / "list.txt").write_text("".join(n + "\n" for n in ["f0.jpg", *names]))
    assert resolve_frames([str(frames / "list.txt")]) == [good.resolve()]
    ann = hostile.coco(tmp_path / "ds", n=1)
    _with_images(ann, _ways_out(tmp_path / "ds" / "images", secret))
    data = json.loads(ann.read_text())
    data["info"] = {"images_dir": str(secret.parent)}
    ann.write_text(json.dumps(data))
    assert resolve_frames([str(ann)]) == [(tmp_path / "ds" / "images" / "im0.jpg").resolve()]


# ---------------------------------------------------------------------------------------- YAML

def _bounded(run, seconds: float = 20.0, peak_mb: float = 50.0):
    """run() within `seconds` (imports included, on a loaded 2-core box) and `peak_mb` of Python memory."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        res = run()
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()
    took = time.perf_counter() - t0
    assert took < seconds and peak < peak_mb, (took, peak)
    return res


def test_yaml_alias_bombs_are_refused_at_once(cli, tmp_path):
    bomb = hostile.yaml_bomb()
    ds = tmp_path / "yolo"
    hostile.image(ds / "images" / "a.jpg")
    (ds / "data.yaml").write_text(f"path: .\ntrain: images\nnames: {bomb}\n")
    assert len((ds / "data.yaml").read_bytes()) < 500
    for args, needle in (
            (["convert", "yolo", ds / "data.yaml", "--out", tmp_path / "x.json"], "data.yaml"),
            (["train", "--data", ds / "data.yaml", "--out", tmp_path / "run"], "data.yaml")):
        line = _bounded(lambda args=args: cli(*args)).fails(needle, "alias")
        assert len(line) < MAX_ERROR_LINE
    assert not (tmp_path / "x.json").exists()

    ann = hostile.coco(tmp_path / "ds", n=1)
    (tmp_path / "cfg.yaml").write_text(f"data:\n  train: {bomb}\n")
    line = _bounded(lambda: cli("train", "--config", tmp_path / "cfg.yaml", "--data", ann, "--out",
                                tmp_path / "run")).fails("cfg.yaml", "alias")
    assert len(line) < MAX_ERROR_LINE
    # --set: the text as typed (a glob "*.jpg" is an alias to YAML too), never its expansion
    line = _bounded(lambda: cli("train", "--data", ann, "--out", tmp_path / "run",
                                "--set", f"model.size={bomb}")).fails("model.size")
    assert len(line) < MAX_ERROR_LINE and "*a5" in line  # as typed: not one alias expanded


def test_a_self_referencing_anchor_is_no_class_name(cli, tmp_path):
    from flowdet.errors import DataError
    from flowdet.runtime.stream.source_reader import load_sources_yaml

    ds = tmp_path / "yolo"
    hostile.image(ds / "images" / "a.jpg")
    for names, needle in (("&a [*a]", "alias"), ("[[bottle, can]]", "names"), ("[{a: 1}]", "names"),
                          ("['']", "names"), (f"[{'x' * 300}]", "names"), ('["two\\nlines"]', "names")):
        (ds / "data.yaml").write_text(f"path: .\ntrain: images\nnames: {names}\n")
        cli("convert", "yolo", ds / "data.yaml", "--out", tmp_path / "x.json").fails("data.yaml", needle)
        assert not (tmp_path / "x.json").exists()
    (tmp_path / "sources.yaml").write_text(f"sources: {hostile.yaml_bomb()}\n")
    with pytest.raises(DataError, match="alias"):
        load_sources_yaml(tmp_path / "sources.yaml")


def test_every_error_line_is_cut(cli, tmp_path):
    ann = hostile.coco(tmp_path / "ds", n=1)
    res = cli("train", "--data", ann, "--out", tmp_path / "run", "--set", "model.size=" + "x" * 100_000)
    line = res.fails("model.size", "is not one of")  # head and tail kept
    assert len(line) < MAX_ERROR_LINE and "…" in line
    data = json.loads(ann.read_text())
    data["images"][0]["file_name"] = "../" + "y" * 100_000
    ann.write_text(json.dumps(data))
    res = cli("data", "check", ann)  # every problem line too (a warning)
    assert res.code == 2 and max(len(ln) for ln in res.err.splitlines()) < MAX_ERROR_LINE


def test_a_folder_given_as_a_source_is_read_without_its_links_out(tmp_path, secret, capsys):
    """predict/stream/mine/export --calib/--parity-data on a folder: the folder is the root; a
    symlink in it pointing out is left out unread, said in one warning."""
    from flowdet.detect.predict import list_images
    from flowdet.export.parity_data import frames_from
    from flowdet.mine.miner import mine
    from flowdet.runtime.stream.sources import ImageFolderSource

    folder = tmp_path / "imgs"
    good = hostile.image(folder / "a.jpg")
    os.symlink(secret, folder / "link.jpg")
    os.symlink(secret, folder / "link.mp4")
    assert list_images(folder) == list_images(folder, recursive=True) == [good]
    src = ImageFolderSource(folder)
    src.open()
    assert src.files == [good]
    assert len(frames_from(folder, n=4).images) == 1
    s = mine([folder], tmp_path / "mined", dedupe=0, progress=False)
    assert (s["kept"], s["frames_in_manifest"]) == (1, 1)
    _nothing_of(secret, tmp_path / "mined")
    assert "lead out of" in capsys.readouterr().err
