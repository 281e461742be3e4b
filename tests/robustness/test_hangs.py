"""Hangs: a FIFO where a config, sources file, list or state file goes; numbers that made a loop stand
still (``--fps inf``), spin (``--threads 1000``) or run 10⁹ epochs; ``nan`` read as "off". Each is one
``Error:`` line at once (or a counted skip), from one rule: :mod:`flowdet.files` for every small file
a user names, ``flowdet.commands.Number`` / :mod:`flowdet.core.validate` for every numeric flag."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from robustness import hostile

pytest.importorskip("torch")


@pytest.fixture
def unblock():
    """``unblock(fifo)``: after a few seconds, end any read stuck on ``fifo`` (open it for writing,
    close it: the reader sees end-of-file) and remember it — so an old build's hang fails the test
    instead of stalling the suite. ``unblock.hung`` lists the FIFOs someone was reading."""
    hung: list[Path] = []
    stop = threading.Event()

    def watch(fifo: Path) -> Path:
        def run() -> None:
            while not stop.wait(3.0):
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while nobody reads it
                except OSError:
                    continue
                hung.append(fifo)
                os.close(fd)
        threading.Thread(target=run, daemon=True).start()
        return fifo

    watch.hung = hung  # type: ignore[attr-defined]
    yield watch
    stop.set()


def _voc(root: Path) -> tuple[Path, Path]:
    ann, img = root / "Annotations", root / "JPEGImages"
    ann.mkdir(parents=True)
    hostile.image(img / "a.jpg")
    (ann / "a.xml").write_text("<annotation><filename>a.jpg</filename><size><width>96</width><height>64</height>"
                               "</size><object><name>bottle</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30"
                               "</xmax><ymax>25</ymax></bndbox></object></annotation>")
    return ann, img


@pytest.mark.timeout(300)
def test_a_fifo_where_a_small_file_goes_is_refused_not_read(cli, unblock, onnx64, tmp_path):
    fifo = unblock(hostile.fifo(tmp_path / "f.yaml"))
    txt = unblock(hostile.fifo(tmp_path / "list.txt"))
    jsonl = unblock(hostile.fifo(tmp_path / "frames.jsonl"))
    ann, img = _voc(tmp_path / "voc")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: list.txt\nnames: [bottle]\n")
    for args in (["train", "--config", fifo],
                 ["pretrain", "--config", fifo, "--frames", tmp_path / "voc" / "JPEGImages", "--out", tmp_path / "p"],
                 ["stream", "--model", onnx64, "--sources", fifo],
                 ["pretrain", "--method", "byol", "--frames", txt, "--out", tmp_path / "p2"],
                 ["pretrain", "--method", "byol", "--frames", jsonl, "--out", tmp_path / "p3"],
                 ["convert", "voc", ann, "--images", img, "--labels", txt, "--out", tmp_path / "v.json"],
                 ["convert", "yolo", tmp_path / "data.yaml", "--out", tmp_path / "y.json"]):
        cli(*args).fails("not a regular file")
    assert unblock.hung == []


@pytest.mark.timeout(300)
def test_a_fifo_among_annotation_and_state_files(cli, unblock, tmp_path):
    ann, img = _voc(tmp_path / "voc")
    unblock(hostile.fifo(ann / "b.xml"))
    res = cli("convert", "voc", ann, "--images", img, "--out", tmp_path / "v.json").ok()
    assert "b.xml" in res.err and "not a regular file" in res.err
    assert len(json.loads((tmp_path / "v.json").read_text())["images"]) == 1
    # a YOLO label file that is a FIFO: that image skipped and said, not taken for "no boxes"
    yolo = tmp_path / "yolo"
    (yolo / "classes.txt").parent.mkdir()
    (yolo / "classes.txt").write_text("bottle\n")
    hostile.image(yolo / "a.jpg")
    hostile.image(yolo / "b.jpg")
    (yolo / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    unblock(hostile.fifo(yolo / "b.txt"))
    res = cli("convert", "yolo", yolo, "--out", tmp_path / "y.json").ok()
    assert "b.txt" in res.err and "not a regular file" in res.err
    assert [im["file_name"] for im in json.loads((tmp_path / "y.json").read_text())["images"]] == ["a.jpg"]
    # mine's manifest and efficiency's results as FIFOs
    frames = tmp_path / "frames"
    hostile.image(frames / "0.jpg")
    (tmp_path / "mined").mkdir()
    unblock(hostile.fifo(tmp_path / "mined" / "manifest.jsonl"))
    cli("mine", frames, "--out", tmp_path / "mined").fails("manifest.jsonl", "not a regular file")
    coco = hostile.coco(tmp_path / "ds")
    (tmp_path / "eff").mkdir()
    unblock(hostile.fifo(tmp_path / "eff" / "results.json"))
    cli("efficiency", "--data", coco, "--val", coco, "--kinds", "scratch", "--fractions", "1", "--epochs", 1,
        "--out", tmp_path / "eff").fails("results.json", "not a regular file")
    assert unblock.hung == []


# ------------------------------------------------------------------------------- numeric flags

def _frames(tmp_path: Path) -> Path:
    for i in range(2):
        hostile.image(tmp_path / "frames" / f"{i}.jpg", seed=i)
    return tmp_path / "frames"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("verb,flag,value", [
    ("mine", "--fps", "nan"), ("mine", "--fps", "inf"), ("mine", "--fps", "1e300"), ("mine", "--dedupe", "nan"),
    ("mine", "--dedupe", "inf"), ("mine", "--every", "1e400"),
    ("stream", "--overlap", "nan"), ("stream", "--duration", "inf"), ("stream", "--interval", "nan"),
    ("synth", "--video", "inf"), ("synth", "--fps", "1e300"), ("synth", "--seed", "-1"),
    ("export", "--max-ap-drop", "nan"), ("export", "--min-speedup", "inf"),
    ("train", "--seed", "-1"), ("train", "--lr", "nan"), ("data-split", "--seed", "-1"),
    ("demo", "--seed", "-1"), ("predict", "--threads", "1000"), ("stream", "--threads", "1000"),
])
def test_every_numeric_flag_is_finite_and_in_range(cli, onnx64, ckpt64, tmp_path, verb, flag, value):
    """Before: nan / inf / 1e300 went through click's float and FloatRange (nan compares false with
    every bound), a negative seed reached numpy, 1000 spinning threads on 2 cores never finished."""
    frames = _frames(tmp_path)
    ann = hostile.coco(tmp_path / "ds")
    args = {"mine": ["mine", frames, "--out", tmp_path / "m"],
            "stream": ["stream", "--model", onnx64, frames, "--jsonl", tmp_path / "d.jsonl"],
            "synth": ["synth", tmp_path / "s", "--images", 1, "--size", "320x192"],
            "export": ["export", "--ckpt", ckpt64, "--out", tmp_path / "m.onnx", "--no-parity"],
            "train": ["train", "--data", ann, "--out", tmp_path / "run", "--epochs", 1],
            "data-split": ["data", "split", ann, "--out", tmp_path / "sp"],
            "demo": ["demo", "--out", tmp_path / "demo", "--quick"],
            "predict": ["predict", frames, "--model", onnx64, "--out", tmp_path / "p"]}[verb]
    cli(*args, flag, value).fails(flag, value)
    for out in ("m", "s", "run", "sp", "demo", "p"):
        assert not (tmp_path / out / "manifest.jsonl").exists() and not (tmp_path / out / "last.pt").exists()
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "d.jsonl").exists()


@pytest.mark.timeout(180)
def test_mine_fps_that_never_advanced_the_sampler(tmp_path):
    """--fps 1e300 on a video: the sampler's next time grew by 1e-300 per step — forever."""
    from flowdet.errors import InputError
    from flowdet.mine.miner import FrameSampler, mine

    video = hostile.truncated_video(tmp_path / "v.avi", keep=1.0)
    for fps in (float("inf"), 1e300, float("nan"), 0.0, -1.0):
        with pytest.raises(InputError, match="--fps"):
            mine([video], tmp_path / "out", fps=fps)
    with pytest.raises(InputError, match="--dedupe"):
        mine([video], tmp_path / "out", dedupe=float("nan"))
    s = FrameSampler(fps=1000.0)  # the largest rate accepted; a clock jump is skipped, not stepped through
    s.fps = 25.0
    assert s(0, 0.0) and s(1, 1e9) and not s(2, 1e9)


@pytest.mark.timeout(180)
def test_efficiency_fraction_that_asks_for_a_billion_epochs(cli, tmp_path):
    """--fractions 1e-9 trains epochs / f = 3·10¹⁰ epochs (equal iterations): refused up front."""
    ann = hostile.coco(tmp_path / "ds")
    t = time.perf_counter()
    cli("efficiency", "--data", ann, "--val", ann, "--kinds", "scratch", "--fractions", "1e-9",
        "--out", tmp_path / "eff").fails("--fractions", "1e-09", "over train's limit")
    cli("efficiency", "--data", ann, "--val", ann, "--kinds", "scratch", "--seeds", "0,-1",
        "--out", tmp_path / "eff").fails("--seeds", "-1")
    assert time.perf_counter() - t < 30 and not (tmp_path / "eff" / "points").exists()
