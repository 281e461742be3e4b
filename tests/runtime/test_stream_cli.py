"""`flowdet stream` as a newcomer sees it (issue 34): the closing lines name every file written and the
next command, progress for files, --vid-stride, the model's stored threshold."""
from __future__ import annotations

import importlib.util
import json
import re

import pytest
from cli_helpers import run_cli_captured

_stdout = run_cli_captured  # (exit code, stdout, stderr)


def test_closing_lines_name_every_file_and_the_next_command(nano_onnx, small_video, tmp_path, capsys):
    base = ["stream", "--model", str(nano_onnx), str(small_video), "--max-frames", "3", "--threads", "1"]
    code, out, _ = _stdout(capsys, *base, "--out", str(tmp_path / "a.mp4"), "--jsonl", str(tmp_path / "a.jsonl"))
    assert code == 0 and f"wrote {tmp_path / 'a.mp4'}, {tmp_path / 'a.jsonl'}" in out
    assert "next: flowdet stream" in out and "--out-dir" in out

    o = tmp_path / "o"
    db = ["--db", str(tmp_path / "c.sqlite")] if importlib.util.find_spec("sqlalchemy") else []
    code, out, _ = _stdout(capsys, *base, "--out-dir", str(o), "--video", *db)
    assert code == 0
    assert (f"wrote {o}: counts.csv, status.json, summary.json, synthetic/detections.jsonl, "
            "synthetic/annotated.mp4") in out
    for name in ("counts.csv", "status.json", "summary.json", "synthetic/detections.jsonl", "synthetic/annotated.mp4"):
        assert (o / name).is_file()
    assert (f"next: flowdet counts --db {tmp_path / 'c.sqlite'}" if db else "next: flowdet stream") in out


def test_file_progress_is_frame_of_total_with_eta_live_keeps_the_health_line(tmp_path):
    from multistream_helpers import SquareFinder, square_video

    from flowdet.runtime.stream.stream import StreamOptions, format_progress, run_stream

    video = square_video(tmp_path / "v.mp4", 2, frames=30)
    seen: list[dict] = []
    run_stream(SquareFinder(), str(video), log_every_s=0.0, progress=seen.append)
    lines = [format_progress(st) for st in seen]
    assert lines and all(re.match(r"frame \d+/30 \| [\d.]+ fps \| ETA (\d+s|\?) \| det/frame", x) for x in lines), lines
    assert StreamOptions().log_every_s is None   # files: FILE_PROGRESS_EVERY_S, live: every 2 s
    live = {**seen[-1], "live": True, "total": None}
    assert format_progress(live).startswith(f"frames {live['frames']} | ") and "latency p50" in format_progress(live)


def test_multistream_logs_file_progress_not_health_lines(tmp_path, capsys, monkeypatch):
    from multistream_helpers import SquareFinder, square_video

    import flowdet.runtime.stream.multistream as ms

    monkeypatch.setattr(ms, "FILE_PROGRESS_EVERY_S", 0.0)
    video = square_video(tmp_path / "v.mp4", 2, frames=60)
    ms.run_multistream(SquareFinder(), [str(video)], tmp_path / "o", status_every_s=0.0)
    err = capsys.readouterr().err
    assert re.search(r"v: frame \d+/60 \| [\d.]+ fps \| ETA \S+ \| count \d", err), err
    assert "connected |" not in err and err.count("v: ended") == 1


@pytest.mark.parametrize("multi", [False, True])
def test_vid_stride_processes_every_nth_frame_with_the_tracker_dt(tmp_path, capsys, multi):
    from multistream_helpers import SquareFinder, square_video

    from flowdet.runtime.stream.multistream import run_multistream
    from flowdet.runtime.stream.stream import run_stream

    video = square_video(tmp_path / "v.mp4", 2, frames=61)
    if multi:
        s = run_multistream(SquareFinder(), [str(video)], tmp_path / "o", vid_stride=2)["sources"]["v"]
        lines = (tmp_path / "o" / "v" / "detections.jsonl").read_text().splitlines()
        count = s["counts"]["count"]
    else:
        s = run_stream(SquareFinder(), str(video), jsonl=tmp_path / "d.jsonl", vid_stride=2)
        lines = (tmp_path / "d.jsonl").read_text().splitlines()
        count = s["count"]
    frames = [json.loads(x)["frame"] for x in lines]
    assert frames == list(range(0, 61, 2)) and s["frames"] == 31
    assert [json.loads(x)["time"] for x in lines][:2] == [0.0, 0.08]   # 2 frames at 25 fps apart
    assert count == 2                      # the squares move 12 px per processed frame: dt 2 keeps the tracks
    assert "every 2nd frame (--vid-stride 2; tracker dt 2 frames)" in capsys.readouterr().err


def test_vid_stride_is_a_flag_of_stream(nano_onnx, small_video, capsys):
    code, _, err = _stdout(capsys, "stream", "--model", str(nano_onnx), str(small_video), "--vid-stride", "4",
                           "--threads", "1")
    assert code == 0 and "40 frames" not in err and "10 frames | every 4th frame" in err


def test_overlay_text_is_drawn_once(monkeypatch):
    """The annotated video's count label had a second, white copy drawn behind it."""
    import cv2
    import numpy as np

    import flowdet.runtime.stream.multistream as ms
    from flowdet.runtime.track.track import Track

    drawn: list[str] = []
    real = cv2.putText

    def put_text(img, text, *args, **kw):
        drawn.append(text)
        return real(img, text, *args, **kw)

    monkeypatch.setattr(ms.cv2, "putText", put_text)
    track = Track.__new__(Track)
    track.id, track.box, track.trail = 7, np.array([40, 40, 60, 60], np.float32), [(50, 50), (52, 52)]
    vis = ms.draw_tracks(np.full((120, 160, 3), 128, np.uint8), [track], (0, 60, 160, 60), "cam: 3 | line 1")
    assert sorted(drawn) == sorted(["7", "cam: 3 | line 1"])
    assert (vis[4:20, 4:40] == 255).any() and (vis[4:20, 4:40] == 0).any()   # white text on its black box


@pytest.mark.parametrize("multi", [False, True])
def test_without_conf_the_models_best_f1_threshold_is_used_and_said(tmp_path, capsys, multi):
    from multistream_helpers import SquareFinder, square_video

    from flowdet.runtime.stream.multistream import run_multistream
    from flowdet.runtime.stream.stream import run_stream

    video = square_video(tmp_path / "v.mp4", 2, frames=30)

    def run(score: float, **kw):
        model = SquareFinder(score=score)
        model.best_conf, model.best_conf_from = 0.4, "eval of epoch 5"   # what an exported model stores
        if multi:
            return run_multistream(model, [str(video)], tmp_path / f"o{len(list(tmp_path.iterdir()))}", **kw)
        return run_stream(model, str(video), **kw)

    s = run(0.5)
    err = capsys.readouterr().err
    assert s["conf"] == 0.4 and "conf 0.400: the best-F1 threshold stored in the model (eval of epoch 5)" in err
    assert "no detections" not in err
    s = run(0.5, conf=0.9)                     # the model's boxes all lie below the --conf given
    err = capsys.readouterr().err
    assert s["conf"] == 0.9 and "conf 0.400:" not in err
    assert "warning: no detections at conf ≥ 0.9 in 30 frames: the model's best-F1 threshold is 0.400 (--conf 0.400)" in err
