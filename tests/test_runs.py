"""Run folders increment as ultralytics' do (runs/x, runs/x2, …) unless exist_ok."""
from __future__ import annotations

from flowdet.runs import increment_path


def test_increment_path(tmp_path):
    run = tmp_path / "train"
    assert increment_path(run) == run  # free
    run.mkdir()
    assert increment_path(run) == run  # an empty folder is free too
    (run / "best.pt").write_bytes(b"x")
    assert increment_path(run) == tmp_path / "train2"
    assert increment_path(run, exist_ok=True) == run
    (tmp_path / "train2").mkdir()
    (tmp_path / "train2" / "f").write_text("x")
    assert increment_path(run) == tmp_path / "train3"
