"""One rule for the scores of `flowdet stream`: --conf only filters the boxes written; the tracker's
--track-high / --track-low / --track-birth alone decide what is tracked and counted.

The case of issue 33: a weak model (every true object at score 0.05) with `--conf 0.005` counted 0
and said nothing. It still counts 0 — --conf is output-only — but the boxes are written, a warning
names the flags that count, and with those flags the objects are counted."""
from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli
from multistream_helpers import SquareFinder, square_video

from flowdet.runtime.stream.multistream import run_multistream
from flowdet.runtime.stream.stream import StreamOptions, run_stream
from flowdet.runtime.track.track import TrackerConfig

WEAK = TrackerConfig(high_thresh=0.04, low_thresh=0.01, new_track_thresh=0.04)


def _cli_out(capsys, *args: str) -> tuple[int, str]:
    """(exit code, stdout) of ``flowdet`` run in-process."""
    return run_cli(capsys, *args, stdout=True)


@pytest.fixture(scope="module")
def two_squares(tmp_path_factory):
    return square_video(tmp_path_factory.mktemp("v") / "v.mp4", 2, frames=90)


def test_conf_is_output_only_on_one_source(two_squares, tmp_path, capsys):
    s = run_stream(SquareFinder(score=0.05), str(two_squares), jsonl=tmp_path / "a.jsonl", conf=0.005)
    assert s["count"] == 0 and s["detections"] > 0            # written, not counted (default thresholds)
    assert "--track-birth" in capsys.readouterr().err          # ... and said so
    s = run_stream(SquareFinder(score=0.05), str(two_squares), conf=0.005, tracker=WEAK)
    assert s["count"] == 2
    hidden = run_stream(SquareFinder(score=0.05), str(two_squares), jsonl=tmp_path / "b.jsonl", conf=0.5, tracker=WEAK)
    assert hidden["count"] == 2 and hidden["detections"] == 0  # --conf above every box: counts unchanged
    lines = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert all(r["boxes"] == [] for r in lines) and lines[-1]["count"] == 2 and any(r["tracks"] for r in lines)


def test_conf_is_output_only_on_many_sources(two_squares, tmp_path):
    weak = run_multistream(SquareFinder(score=0.05), [str(two_squares)], tmp_path / "a", StreamOptions(conf=0.005))
    assert weak["count"] == 0 and weak["sources"]["v"]["detections"] > 0
    cfg = TrackerConfig(**vars(WEAK))
    s = run_multistream(SquareFinder(score=0.05), [str(two_squares)], tmp_path / "b", StreamOptions(conf=0.9, tracker=cfg))
    assert s["count"] == 2 and s["sources"]["v"]["detections"] == 0
    assert cfg == WEAK                                           # the caller's config is not changed


@pytest.mark.parametrize("multi", [False, True], ids=["one-source", "out-dir"])
def test_cli_track_flags_reach_the_tracker(monkeypatch, two_squares, tmp_path, capsys, multi):
    import flowdet.runtime.predict.predictor as predictor_mod

    monkeypatch.setattr(predictor_mod, "load_predictor", lambda *a, **k: SquareFinder(score=0.05))
    args = ["stream", "--model", str(two_squares), str(two_squares), "--conf", "0.005"]
    args += ["--out-dir", str(tmp_path / "o")] if multi else []
    code, err = run_cli(capsys, *args)
    assert code == 0 and "--track-birth" in err
    code, out = _cli_out(capsys, *args, "--track-high", "0.04", "--track-low", "0.01", "--track-birth", "0.04")
    assert code == 0
    if multi:
        assert json.loads((tmp_path / "o2" / "summary.json").read_text())["count"] == 2   # a new run folder
    else:
        assert "| count 2 |" in out


def test_cli_bad_track_threshold_is_one_line(two_squares, capsys):
    code, err = run_cli(capsys, "stream", "--model", str(two_squares), str(two_squares), "--track-low", "0.7")
    assert code == 2 and "--track-low" in err and "Traceback" not in err
