"""docs/own-data.md, run: its exact `flowdet` commands on synthetic VOC and YOLO exports.

Each command runs in-process (``flowdet.cli.main``) in a folder laid out as the page says (videos/,
labels/ or yolo/); only speed flags are appended (click keeps the last value of a flag), so a
command renamed, a flag dropped or a folder name that does not chain fails here."""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from flowdet.cli import main  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "own-data.md"
FAST = {  # per verb: shrink the run, never change what it reads or writes
    "mine": ["--max-frames", "4"],
    "pretrain": ["--epochs", "1", "--batch", "2", "--crop", "32", "--set", "train.max_steps=1", "--set",
                 "train.threads=1", "--set", "data.frame_size=160", "--set", "method.small_views=0"],
    # train.log_every_s=0: the log-file progress line at every iteration (checked below)
    "train": ["--epochs", "1", "--img-size", "64", "--workers", "0", "--batch", "2", "--set", "train.log_every_s=0"],
    "stream": ["--max-frames", "3"],
    # A 1-epoch model's box regressions are huge (|raw| ~1e4): fp32 ONNX-vs-torch differences then
    # exceed the absolute tolerance. Parity is tested on a calibrated model in tests/export.
    "export": ["--no-parity"],
}


# The Python block's train call, shrunk the same way (the only edit made to it)
FAST_PY = ("epochs=100", "epochs=1, img_size=64, batch=2, overrides={'train.workers': 0}")


def doc_python() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def doc_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    return [shlex.split(line)[1:] for b in blocks for line in b.splitlines() if line.startswith("flowdet ")]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """videos/river.mp4, labels/ (VOC: Annotations + JPEGImages) and yolo/ (data.yaml) of one synthetic set."""
    import cv2

    from flowdet.data.coco import load_coco
    from flowdet.data.synth import SynthConfig, generate
    from flowdet.data.voc import write_voc_xml
    from flowdet.data.yolo import coco_to_yolo

    root = tmp_path_factory.mktemp("own_data")
    syn = root / "synth"
    generate(syn, SynthConfig(num_images=6, width=192, height=108, seed=2, min_size=8, max_size=30,
                              objects_per_image=(1, 3), video_seconds=1.0, fps=5))
    (root / "videos").mkdir()
    shutil.copy(syn / "video.mp4", root / "videos" / "river.mp4")
    ds = load_coco(syn / "annotations.json", syn / "images")
    (root / "labels" / "Annotations").mkdir(parents=True)
    (root / "labels" / "JPEGImages").mkdir()
    for r in ds.records:
        name = f"cam{r.image_id % 2}_{r.image_id:06d}.jpg"  # two "cameras": split by video keeps them apart
        cv2.imwrite(str(root / "labels" / "JPEGImages" / name), cv2.imread(str(r.file)))
        objs = [(ds.names[int(c)], [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], False)
                for b, c in zip(r.boxes, r.classes)]
        write_voc_xml(root / "labels" / "Annotations" / f"{Path(name).stem}.xml", name, r.width, r.height, objs)
    for split in ("train", "val"):
        coco_to_yolo(syn / "annotations.json", syn / "images", root / "yolo", split=split, copy=True)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_the_own_data_walkthrough_runs_as_written(exports, tmp_path, monkeypatch, capsys, fmt):
    work = tmp_path / fmt
    shutil.copytree(exports, work, ignore=shutil.ignore_patterns("synth"))
    monkeypatch.chdir(work)
    cmds = doc_commands()
    assert [c[0] for c in cmds][:2] == ["data", "data"] and "stream" in {c[0] for c in cmds}
    for argv in cmds:
        if fmt == "yolo":  # the page: "give its data.yaml instead of labels/"
            argv = ["yolo/data.yaml" if a == "labels/" else a for a in argv]
        try:
            main([*argv, *FAST.get(argv[0], [])])
        except SystemExit as e:
            assert not e.code, f"`flowdet {shlex.join(argv)}` exited {e.code}"
        cap = capsys.readouterr()
        if argv[0] in ("train", "eval", "predict", "export"):  # each ends with its files and the next command
            assert "next: flowdet " in cap.out, (argv, cap.out)
            if argv[0] != "export":
                assert re.search(r"^wrote runs/\w+: \w", cap.out, re.M), (argv, cap.out)
        if argv[0] == "train" and "--resume" not in argv:  # not a terminal: progress lines with the ETA
            assert re.search(r"epoch 1/1 it \d+/\d+: .* it/s, ETA", cap.err), cap.err
    val = json.loads(Path("splits/val.json").read_text())
    train = json.loads(Path("splits/train.json").read_text())
    if fmt == "voc":  # one camera never on both sides
        assert not {i["file_name"][:4] for i in val["images"]} & {i["file_name"][:4] for i in train["images"]}
    for out in ("runs/ssl/backbone.pt", "runs/train/best.pt", "runs/train/results.png", "runs/eval/metrics.json",
                "runs/eval/prf_curve.png", "runs/model.onnx", "runs/predict/results.json", "runs/detections.jsonl"):
        assert Path(out).is_file(), out
    # No silent overwrite: the page's folder verbs run again land beside the first results.
    again = {c[0]: c for c in cmds if c[0] in ("train", "eval", "predict") and "runs/student" not in c}
    for verb, argv in again.items():
        before = sorted(Path(f"runs/{verb}").iterdir())
        main([*(["yolo/data.yaml" if a == "labels/" else a for a in argv] if fmt == "yolo" else argv),
              *FAST.get(verb, [])])
        assert sorted(Path(f"runs/{verb}").iterdir()) == before and Path(f"runs/{verb}2").is_dir(), verb
    # The Python API block, run as written (epochs shrunk)
    [block] = doc_python()
    assert FAST_PY[0] in block
    exec(compile(block.replace(*FAST_PY), str(DOC), "exec"), {})
    assert Path("runs/api/best.pt").is_file() and any(Path("runs/api/pred").glob("*.jpg"))
