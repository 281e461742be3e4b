"""Data loss and concurrency: outputs that overwrote inputs or each other, two runs sharing one folder,
caches and "already done" answers keyed on less than what they read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness import hostile

pytest.importorskip("torch")


def _two_folders(src: Path) -> list[Path]:
    """src/a/x.jpg, src/a/y.jpg, src/b/x.jpg, src/b/y.jpg: the same names in two folders."""
    return [hostile.image(src / d / f"{n}.jpg", seed=i) for i, (d, n) in
            enumerate((d, n) for d in ("a", "b") for n in ("x", "y"))]


@pytest.mark.timeout(300)
def test_predict_never_writes_into_what_it_reads(cli, onnx64, tmp_path):
    src = tmp_path / "src"
    images = _two_folders(src)
    before = {p: p.read_bytes() for p in images}
    # --out inside a folder walked with --recursive: a rerun would predict on the drawings (and, with the
    # old flat layout, src/a/pred/x.jpg was overwritten by the drawing of src/b/x.jpg, and so on)
    for out in (src / "a", src / "a" / "pred", src):
        cli("predict", src, "--recursive", "--model", onnx64, "--out", out, "--exist-ok").fails(
            "--out", "inside the source folder" if out != src else "is the source folder")
    cli("predict", f"{src}/**/*.jpg", "--model", onnx64, "--out", src / "p", "--exist-ok").fails("--out")
    assert {p: p.read_bytes() for p in images} == before and not (src / "a" / "pred").exists()
    # an --out beside SOURCE: 4 images, 4 drawings and 4 label files (not 2), at their own paths
    res = cli("predict", src, "--recursive", "--model", onnx64, "--out", tmp_path / "out", "--save-txt",
              "--conf", "0.01").ok()
    assert res.out.startswith("4 images,")
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["a/x.jpg", "a/y.jpg", "b/x.jpg",
                                                                                  "b/y.jpg"]
    assert sorted(p.relative_to(out / "labels").as_posix() for p in (out / "labels").rglob("*.txt")) == [
        "a/x.txt", "a/y.txt", "b/x.txt", "b/y.txt"]
    names = {r["file_name"] for r in json.loads((out / "results.json").read_text())}
    assert names <= {"a/x.jpg", "a/y.jpg", "b/x.jpg", "b/y.jpg"}
    # a sub-folder without --recursive is not walked: writing there is fine
    cli("predict", src / "a", "--model", onnx64, "--out", src / "preds", "--no-draw").ok()


def test_two_train_runs_started_at_once_get_two_folders(tmp_path):
    """Both decided 'runs/x is free' before either wrote anything: one folder, two runs."""
    from flowdet.commands.detect import _new_run_dir
    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig

    cfg = load_config(DetectConfig, None, [f"out={tmp_path / 'x'}"])
    first, second = _new_run_dir(cfg, False), _new_run_dir(cfg, False)  # nothing written in between
    assert first.out == str(tmp_path / "x") and second.out == str(tmp_path / "x2")
    assert _new_run_dir(cfg, True).out == str(tmp_path / "x")  # --exist-ok: that folder, as asked


def test_increment_path_claims_atomically_under_a_race(tmp_path, monkeypatch):
    """Every process saw the folder free (the check-then-write window): the claim decides."""
    import threading

    import flowdet.runs as runs

    monkeypatch.setattr(runs, "is_used", lambda p: False)
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(runs.increment_path(tmp_path / "r", claim=True)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all((p / runs.CLAIM).is_file() for p in got)


def _frames(root: Path, n: int) -> Path:
    for i in range(n):
        hostile.image(root / f"{i:03d}.jpg", w=64 + 8 * i, seed=i)
    return root


def test_mine_one_run_per_folder_and_duplicates_repaired(cli, tmp_path):
    import fcntl

    frames = _frames(tmp_path / "frames", 3)
    out = tmp_path / "mined"
    out.mkdir()
    with open(out / "manifest.jsonl.lock", "a+b") as held:  # another `flowdet mine` at work in this folder
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        cli("mine", frames, "--out", out, "--dedupe", 0).fails("another `flowdet mine`")
    cli("mine", frames, "--out", out, "--dedupe", 0).ok()
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3
    # what two runs at once left before the lock existed: every line twice; a rerun repairs it
    (out / "manifest.jsonl").write_text("".join(f"{ln}\n{ln}\n" for ln in lines))
    res = cli("mine", frames, "--out", out, "--dedupe", 0).ok()
    assert "removed 3 duplicate line(s)" in res.err
    assert (out / "manifest.jsonl").read_text().splitlines() == lines

    from flowdet.mine.miner import read_manifest  # pretraining reads each frame once, too

    (out / "manifest.jsonl").write_text("".join(f"{ln}\n{ln}\n" for ln in lines))
    assert len(read_manifest(out / "manifest.jsonl")) == 3


def test_mine_a_folder_that_grew_is_mined_again(cli, tmp_path):
    frames = _frames(tmp_path / "frames", 2)
    out = tmp_path / "mined"
    cli("mine", frames, "--out", out, "--dedupe", 0).ok()
    assert "already mined" in cli("mine", frames, "--out", out, "--dedupe", 0).ok().out
    hostile.image(frames / "002.jpg", w=200, seed=9)
    res = cli("mine", frames, "--out", out, "--dedupe", 0).ok()
    assert "already mined" not in res.out and "kept 1" in res.out
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3


def test_yolo_cache_sees_a_background_image_added_later(tmp_path):
    from flowdet.data.formats import resolve_dataset

    root = tmp_path / "ds"
    for n in ("a", "b"):
        hostile.image(root / "images" / "train" / f"{n}.jpg")
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{n}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [bottle]\n")
    first = json.loads(resolve_dataset(root / "data.yaml").read_text())
    assert len(first["images"]) == 2
    hostile.image(root / "images" / "train" / "c.jpg", seed=3)  # a background image: no label file
    again = json.loads(resolve_dataset(root / "data.yaml").read_text())
    assert sorted(im["file_name"] for im in again["images"]) == ["images/train/a.jpg", "images/train/b.jpg",
                                                                 "images/train/c.jpg"]
