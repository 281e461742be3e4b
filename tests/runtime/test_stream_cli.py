"""`flowdet stream` as a newcomer sees it (issue 34): the closing lines name every file written and the
next command, progress for files, --vid-stride, the model's stored threshold."""
from __future__ import annotations

import importlib.util


def _stdout(capsys, *args: str) -> tuple[int, str, str]:
    from flowdet.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


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
