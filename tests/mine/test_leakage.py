"""The leakage guard: frames that are val/test images (same pixels, or another resolution) are refused."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest

from flowdet.errors import DataError
from flowdet.mine.leakage import find_leaks, guard_frames


@pytest.fixture()
def sets(tmp_path, smooth_frames):
    """val/: 2 images + val.json; frames/: 6 other frames, a byte copy, a PNG re-save, a half-size copy."""
    src = sorted(smooth_frames.glob("*.jpg"))
    val = tmp_path / "val"
    val.mkdir()
    for p in src[:2]:
        shutil.copy(p, val / p.name)
    json.dump({"images": [{"id": i, "file_name": p.name, "width": 320, "height": 192} for i, p in enumerate(src[:2])],
               "annotations": [], "categories": [{"id": 1, "name": "x"}]}, (val / "val.json").open("w"))
    frames = tmp_path / "frames"
    frames.mkdir()
    for p in src[2:]:
        shutil.copy(p, frames / p.name)
    img = cv2.imread(str(src[0]))
    return val, frames, src, img


def test_clean_frames_pass(sets):
    val, frames, _, _ = sets
    paths = sorted(frames.glob("*"))
    assert guard_frames(paths, [str(val / "val.json")]) == paths


def test_copies_and_resized_copies_are_found(sets):
    val, frames, src, img = sets
    shutil.copy(src[0], frames / "copy.jpg")  # same bytes
    cv2.imwrite(str(frames / "resaved.png"), img)  # other bytes, same pixels
    cv2.imwrite(str(frames / "half.jpg"), cv2.resize(img, (160, 96), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 80])  # another resolution and quality
    paths = sorted(frames.glob("*"))
    found = {paths[i].name: how for i, _, how in find_leaks(paths, sorted(val.glob("*.jpg")))}
    assert found == {"copy.jpg": "identical pixels", "resaved.png": "identical pixels", "half.jpg": "near-duplicate"}
    assert {paths[i].name for i, _, _ in find_leaks(paths, sorted(val.glob("*.jpg")), near=False)} == \
        {"copy.jpg", "resaved.png"}
    with pytest.raises(DataError, match="3 of 9 pretraining frames are images of the excluded set"):
        guard_frames(paths, [str(val / "val.json")])
    kept = guard_frames(paths, [str(val / "val.json")], action="drop")
    assert len(kept) == 6 and not {"copy.jpg", "resaved.png", "half.jpg"} & {p.name for p in kept}


def test_frames_that_all_match_val_are_one_line_exit_2(sets, tmp_path, capsys):
    from cli_helpers import run_cli

    val, _, _, _ = sets
    code, err = run_cli(capsys, "pretrain", "--method", "byol", "--frames", str(val), "--exclude", str(val / "val.json"),
                        "--out", str(tmp_path / "o"), "--set", "data.frame_size=320")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "all 2 pretraining frames are images of the excluded set" in lines[0]


def test_some_leaked_frames_stop_the_cli_unless_dropped(sets, tmp_path, capsys):
    from cli_helpers import run_cli

    val, frames, src, _ = sets
    shutil.copy(src[1], frames / "leak.jpg")
    args = ["pretrain", "--method", "byol", "--frames", str(frames), "--exclude", str(val / "val.json"),
            "--set", "data.frame_size=320", "--set", "train.max_steps=1", "--batch", "2", "--crop", "32",
            "--set", "method.small_views=0", "--set", "train.threads=1", "--epochs", "1"]
    code, err = run_cli(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 2 and "1 of 7 pretraining frames" in err and "--drop-excluded" in err
    code, err = run_cli(capsys, *args, "--out", str(tmp_path / "b"), "--drop-excluded")
    assert code == 0 and "left out 1 of 7" in err and (tmp_path / "b" / "backbone.pt").is_file()
