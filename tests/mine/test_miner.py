"""`flowdet mine`: sampling, dedupe, resume/idempotence, crash consistency, bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flowdet.mine import miner as mine_mod
from flowdet.mine.miner import mine, read_manifest

from .conftest import write_video


def _lines(out: Path) -> list[dict]:
    return [json.loads(s) for s in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    moving = write_video(d / "moving.mp4", 40, moving=True)
    static = write_video(d / "static.mp4", 30, moving=False)
    data = moving.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "garbage.avi").write_bytes(b"not a video at all" * 100)
    return {"moving": moving, "static": static, "truncated": d / "truncated.mp4", "garbage": d / "garbage.avi"}


def test_manifest_lines_and_files(videos, tmp_path):
    s = mine([videos["moving"]], tmp_path, every=4, dedupe=0, progress=False)
    lines = _lines(tmp_path)
    assert s["kept"] == len(lines) == 10 and [r["frame"] for r in lines] == list(range(0, 40, 4))
    rec = lines[1]
    assert set(rec) >= {"source", "frame", "time", "hash", "path", "width", "height"}
    assert rec["time"] == pytest.approx(4 / 25.0, abs=1e-3) and (rec["width"], rec["height"]) == (160, 96)
    assert cv2.imread(str(tmp_path / rec["path"])).shape == (96, 160, 3)
    assert all(Path(r["path"]).is_file() for r in read_manifest(tmp_path / "manifest.jsonl"))


def test_static_video_is_deduped_to_one_frame(videos, tmp_path):
    s = mine([videos["static"]], tmp_path, dedupe=0.01, progress=False)
    assert s["kept"] == 1 and s["dropped"] == 29


def test_fps_sampling(videos, tmp_path):
    s = mine([videos["moving"]], tmp_path, fps=5.0, dedupe=0, progress=False)  # 25 fps video → every 5th
    assert [r["frame"] for r in _lines(tmp_path)] == list(range(0, 40, 5)) and s["kept"] == 8


def test_rerun_is_idempotent_and_resume_completes(videos, tmp_path):
    full = tmp_path / "full"
    mine([videos["moving"]], full, every=2, dedupe=0.005, progress=False)
    part = tmp_path / "part"
    first = mine([videos["moving"]], part, every=2, dedupe=0.005, max_frames=3, progress=False)
    assert first["kept"] == 3
    again = mine([videos["moving"]], part, every=2, dedupe=0.005, progress=False)  # other params: continues
    assert again["already"] == 3
    assert [r["frame"] for r in _lines(part)] == [r["frame"] for r in _lines(full)]
    third = mine([videos["moving"]], part, every=2, dedupe=0.005, progress=False)  # same params: nothing to do
    assert third["kept"] == 0 and third["sources"][0]["status"] == "done-before"
    assert len(_lines(part)) == len(_lines(full))


def test_interrupt_leaves_consistent_manifest(videos, tmp_path, monkeypatch):
    real_append, calls = mine_mod.Manifest.append, {"n": 0}

    def flaky(self, rec):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C after the 4th JPEG was written, before its line
        real_append(self, rec)

    monkeypatch.setattr(mine_mod.Manifest, "append", flaky)
    with pytest.raises(KeyboardInterrupt):
        mine([videos["moving"]], tmp_path, every=4, dedupe=0, progress=False)
    assert len(_lines(tmp_path)) == 3
    monkeypatch.setattr(mine_mod.Manifest, "append", real_append)
    with open(tmp_path / "manifest.jsonl", "a") as f:
        f.write('{"source": "torn li')  # a crash mid-line is cut off on the next run
    s = mine([videos["moving"]], tmp_path, every=4, dedupe=0, progress=False)
    frames = [r["frame"] for r in _lines(tmp_path)]
    assert frames == list(range(0, 40, 4)) and s["already"] == 3 and s["kept"] == 7


def test_bad_videos_are_reported_and_skipped(videos, tmp_path):
    s = mine([videos["truncated"], videos["garbage"], videos["moving"]], tmp_path, every=10, dedupe=0, progress=False)
    status = {Path(r["source"]).name: r["status"] for r in s["sources"]}
    assert status["garbage.avi"] == "error" and status["moving.mp4"] == "ok"
    assert status["truncated.mp4"] == "error"  # mp4v writes its index (moov atom) last: truncation loses it
    assert any("garbage.avi" in e for e in s["errors"])
    assert s["kept"] >= 4


def test_truncated_avi_is_read_until_the_decoder_stops(tmp_path):
    """The header of a cut AVI still announces every frame: metadata lies, the decoder decides."""
    w = cv2.VideoWriter(str(tmp_path / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 96))
    rng = np.random.default_rng(0)
    for _ in range(40):
        w.write(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))
    w.release()
    data = (tmp_path / "a.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    s = mine([tmp_path / "cut.avi"], tmp_path / "out", dedupe=0, progress=False)
    row = s["sources"][0]
    assert row["status"] == "ok" and 5 < row["kept"] < 40 and "40" in row["warning"]


def test_image_folder_source_with_a_corrupt_file(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(src / f"{i}.png"), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    (src / "9.jpg").write_bytes(b"broken")
    s = mine([src], tmp_path / "out", dedupe=0, progress=False)
    assert s["kept"] == 4 and s["sources"][0]["unreadable"] == ["9.jpg"]


def test_cli_exit_codes(videos, tmp_path):
    from flowdet.cli import main

    with pytest.raises(SystemExit) as e:
        main(["mine", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["mine", str(videos["garbage"]), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    main(["mine", str(videos["static"]), "--out", str(tmp_path / "o2")])
    assert len(_lines(tmp_path / "o2")) == 1


def test_mining_again_with_other_sampling_is_refused_not_mixed(videos, tmp_path, capsys):
    from cli_helpers import run_cli

    out = tmp_path / "frames"
    mine([videos["moving"]], out, progress=False)
    before = len(_lines(out))
    code, err = run_cli(capsys, "mine", str(videos["moving"]), "--out", str(out), "--fps", "2")
    assert code == 2 and "would mix two samplings" in err and "--exist-ok" in err
    assert len(_lines(out)) == before  # nothing appended
    # The same sampling continues (resume), and --exist-ok adds deliberately.
    assert run_cli(capsys, "mine", str(videos["moving"]), "--out", str(out))[0] == 0
    assert run_cli(capsys, "mine", str(videos["moving"]), "--out", str(out), "--fps", "2", "--exist-ok")[0] == 0
