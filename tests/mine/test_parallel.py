"""`flowdet mine --workers N`: one video per process, the same manifest and frames as one worker,
resumable (also from the parts an interrupted parallel run leaves behind)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowdet.mine.miner import expand_sources, mine

from .conftest import write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    for i, n in enumerate((14, 9, 11)):
        write_video(d / f"v{i}.mp4", n, size=(96, 64))
    return d


def _frames(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "frames").rglob("*.jpg"))}


def test_two_workers_write_what_one_worker_writes_and_resume_alike(videos, tmp_path):
    for w in (1, 2):
        mine([videos], tmp_path / f"w{w}", every=2, max_frames=2, progress=False, workers=w)
        s = mine([videos], tmp_path / f"w{w}", every=2, max_frames=4, progress=False, workers=w)  # resume, grow
        assert s["workers"] == w and not s["errors"]
    one, two = tmp_path / "w1", tmp_path / "w2"
    assert (one / "manifest.jsonl").read_text() == (two / "manifest.jsonl").read_text()
    assert _frames(one) == _frames(two) and len(_frames(one)) == 12
    assert not (two / "parts").exists()
    again = mine([videos], two, every=2, max_frames=4, progress=False, workers=2)
    assert {r["status"] for r in again["sources"]} == {"done-before"}


def test_parts_left_by_an_interrupted_parallel_run_are_merged(videos, tmp_path):
    from flowdet.mine.miner import _mine_part

    ref = mine([videos], tmp_path / "ref", every=3, progress=False)
    out = tmp_path / "cut"
    out.mkdir()
    src = expand_sources([videos])[1]
    _mine_part(src, str(out), [], 3, None, None, 0.01, 95)  # a worker finished; its parent died before merging
    assert (out / "parts" / f"{src.slug}.jsonl").is_file()
    s = mine([videos], out, every=3, progress=False, workers=2)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    keys = [(r["source"], r["frame"]) for r in lines]
    assert len(keys) == len(set(keys)) == ref["frames_in_manifest"] == s["frames_in_manifest"]
    assert _frames(out) == _frames(tmp_path / "ref") and not (out / "parts").exists()


def test_workers_below_one_is_refused(videos, tmp_path):
    from flowdet.errors import InputError

    with pytest.raises(InputError, match="--workers"):
        mine([videos], tmp_path / "x", workers=0)
