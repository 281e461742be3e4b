"""Unwritable and full outputs × every verb that writes: one ``Error:`` line naming the path, exit 2,
before any long work starts; and no silent overwrite."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from robustness import hostile

pytest.importorskip("torch")


def _verbs(tmp: Path, out_dir: Path, out_file: Path, onnx64: Path, ckpt64: Path) -> dict[str, list]:
    """verb → argv writing to ``out_dir`` (a folder) or ``out_file`` (a file)."""
    ds = tmp / "ds"
    ann = hostile.coco(ds)
    frames = ds / "images"
    (tmp / "data.yaml").write_text(f"path: {ds}\ntrain: images\nnames: [bottle]\n")
    from flowdet.data.voc import write_voc_xml

    write_voc_xml(tmp / "xml" / "im0.xml", "im0.jpg", 96, 64, [("bottle", [10, 10, 20, 15], False)])
    return {
        "predict": ["predict", frames, "--model", onnx64, "--out", out_dir],
        "eval --out": ["eval", "--model", onnx64, "--ann", ann, "--out", out_dir],
        "eval --json": ["eval", "--model", onnx64, "--ann", ann, "--json", out_file],
        "train": ["train", "--data", ann, "--out", out_dir, "--epochs", 1, "--img-size", 64, "--workers", 0],
        "pretrain": ["pretrain", "--method", "byol", "--frames", frames, "--out", out_dir, "--epochs", 1],
        "export": ["export", "--ckpt", ckpt64, "--out", out_file, "--no-parity"],
        "mine": ["mine", frames, "--out", out_dir],
        "convert voc": ["convert", "voc", tmp / "xml", "--images", frames, "--out", out_file],
        "convert yolo": ["convert", "yolo", tmp / "data.yaml", "--out", out_file],
        "convert coco2yolo": ["convert", "coco2yolo", ann, "--out", out_dir],
        "synth": ["synth", out_dir, "--images", 1, "--size", "160x96", "--max-size", 20],
        "data stats": ["data", "stats", ann, "--out", out_dir],
        "stream --out": ["stream", "--model", onnx64, frames, "--out", out_file],
        "stream --jsonl": ["stream", "--model", onnx64, frames, "--jsonl", out_file],
    }


def test_every_verb_refuses_an_unusable_out_path(cli, tmp_path, onnx64, ckpt64):
    """A file where the folder should be (ENOTDIR): unwritable even for root, unlike chmod."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    for verb, args in _verbs(tmp_path, blocker / "sub", blocker / "sub" / "out.x", onnx64, ckpt64).items():
        line = cli(*args).fails(str(blocker / "sub"))
        assert "cannot create the folder" in line or "Not a directory" in line, (verb, line)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    for verb, args in _verbs(tmp_path, blocker, folder, onnx64, ckpt64).items():  # out a file / a folder
        line = cli(*args).fails()  # flowdet's check, or click's own for flags typed as folder/file
        assert str(blocker) in line or str(folder) in line, (verb, line)
        assert any(w in line for w in ("not a folder", "is a folder", "is a file", "is a directory")), (verb, line)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; ENOTDIR above covers root")
def test_read_only_folder(cli, tmp_path, onnx64, ckpt64):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for args in _verbs(tmp_path, ro / "sub", ro / "out.x", onnx64, ckpt64).values():
            cli(*args).fails(str(ro))
    finally:
        ro.chmod(0o755)


def test_a_full_disk_is_one_line_naming_the_file(cli, tmp_path, onnx64, monkeypatch):
    """ENOSPC in the middle of a write (simulated at fsync): the CLI names the file it was writing."""
    ds = tmp_path / "ds"
    ann = hostile.coco(ds)
    (tmp_path / "data.yaml").write_text(f"path: {ds}\ntrain: images\nnames: [bottle]\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    cli("convert", "yolo", tmp_path / "data.yaml", "--out", tmp_path / "y.json").fails(
        str(tmp_path / "y.json"), "No space left on device")
    cli("predict", ds / "images", "--model", onnx64, "--out", tmp_path / "p", "--no-draw").fails(
        "results.json", "No space left on device")
    cli("data", "stats", ann, "--out", tmp_path / "st").fails("No space left on device")


def test_export_says_it_replaces_an_existing_file(cli, tmp_path, ckpt64):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an older model")
    res = cli("export", "--ckpt", ckpt64, "--out", out, "--no-parity").ok()
    assert f"{out} exists and will be replaced" in res.err and out.stat().st_size > 1000


def test_stream_names_an_unwritable_video_folder_not_a_codec(cli, tmp_path, onnx64):
    img = hostile.image(tmp_path / "a.jpg")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    line = cli("stream", "--model", onnx64, img, "--out", blocker / "v.mp4").fails(str(blocker))
    assert "codec" not in line and ".mp4 or .avi" not in line
