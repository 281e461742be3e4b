"""Many sources in one run: per-video counts, batching, a failing source isolated, a live source
taken down and brought back, status.json, the sources YAML, CLI errors."""
from __future__ import annotations

import csv
import json
import threading
import time

import pytest
from multistream_helpers import FakeLive, SquareFinder, read_status, square_video, wait_for_status

from flowdet.errors import DataError, InputError
from flowdet.runtime.stream.multistream import (
    MultiSourceOptions,
    SourceSpec,
    load_sources_yaml,
    multistream_options,
    run_multistream,
)
from flowdet.runtime.stream.stream import StreamOptions


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("msv")
    return {n: square_video(d / f"v{n}.mp4", n, frames=20 * n + 50) for n in (2, 3, 5)}


def test_many_files_counted_per_video(videos, tmp_path):
    pred = SquareFinder()
    s = run_multistream(pred, [str(p) for p in videos.values()], tmp_path / "o",
                        multi=MultiSourceOptions(video=True, count_line="0,120,320,120", status_every_s=0.2))
    assert s["stopped_by"] == "end"
    by = {name: v for name, v in s["sources"].items()}
    assert {n: by[f"v{n}"]["counts"]["count"] for n in videos} == {2: 2, 3: 3, 5: 5}
    assert {n: by[f"v{n}"]["counts"]["crossings"] for n in videos} == {2: 2, 3: 3, 5: 5}
    for n in videos:
        assert by[f"v{n}"]["frames"] == 20 * n + 50 and by[f"v{n}"]["state"] == "ended"
        lines = [json.loads(x) for x in (tmp_path / "o" / f"v{n}" / "detections.jsonl").read_text().splitlines()]
        assert len(lines) == 20 * n + 50 and lines[-1]["count"] == n
        ids = {t[0] for r in lines for t in r["tracks"]}
        assert ids == set(range(1, n + 1))       # one id per object, never 0 (unconfirmed)
        assert (tmp_path / "o" / f"v{n}" / "annotated.mp4").stat().st_size > 0
    assert max(pred.batches) == 3                 # one batch carries a frame of every source
    rows = list(csv.DictReader(open(tmp_path / "o" / "counts.csv")))
    assert {(r["source"], r["cumulative"]) for r in rows} == {("v2", "2"), ("v3", "3"), ("v5", "5")}
    st = json.loads((tmp_path / "o" / "status.json").read_text())
    assert set(st["sources"]) == {"v2", "v3", "v5"} and st["sources"]["v5"]["count"] == 5
    assert s["count"] == 10 and s["crossings"] == 10


def test_unreachable_source_is_reported_and_retried_while_others_run(videos, tmp_path):
    dead = FakeLive("rtsp://dead", never_opens=True)
    stop = threading.Event()
    specs = [SourceSpec("good", str(videos[3])), SourceSpec("dead", dead)]
    res = {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), specs, tmp_path / "o", StreamOptions(backoff_s=0.05, retries=2),
        MultiSourceOptions(status_every_s=0.1, max_backoff_s=0.1, stop_event=stop))))
    th.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:            # wait for the file to finish, not for a fixed time
        st = tmp_path / "o" / "status.json"
        if st.exists():
            try:
                cur = json.loads(st.read_text())["sources"]
            except ValueError:
                cur = {}
            # "ended" is the reader's word: wait until the last frame has been through inference too
            good = cur.get("good", {})
            if good.get("state") == "ended" and good.get("frames") == 110 and cur.get("dead", {}).get("state") == "failed":
                break
        time.sleep(0.05)
    stop.set()
    th.join(30)
    s = res
    assert s["sources"]["good"]["counts"]["count"] == 3 and s["sources"]["good"]["frames"] == 110
    d = s["sources"]["dead"]
    assert d["state"] == "failed" and d["frames"] == 0 and "cannot open" in d["error"]
    assert s["stopped_by"] == "stopped"


def test_live_source_down_and_back_does_not_stall_the_other(tmp_path):
    a, b = FakeLive("cam-a", fps=25), FakeLive("cam-b", fps=25)
    stop = threading.Event()
    res = {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("a", a), SourceSpec("b", b)], tmp_path / "o", StreamOptions(backoff_s=0.05),
        MultiSourceOptions(status_every_s=0.1, max_backoff_s=0.2, stop_event=stop))))
    th.start()

    def status():
        return read_status(tmp_path / "o")

    def wait_for(cond, limit=60):
        return wait_for_status(tmp_path / "o", cond, limit)[0]

    wait_for(lambda s: s["a"]["count"] >= 2 and s["b"]["count"] >= 2)
    b.down()
    s0 = wait_for(lambda s: s["b"]["state"] in ("reconnecting", "failed"))
    count_b_down = s0["b"]["count"]
    fa = s0["a"]["frames"]
    wait_for(lambda s: s["a"]["frames"] >= fa + 50)   # a keeps going while b is down
    assert status()["b"]["count"] == count_b_down
    b.up()
    wait_for(lambda s: s["b"]["state"] == "connected" and s["b"]["count"] >= count_b_down + 2)
    stop.set()
    th.join(30)
    assert res["sources"]["b"]["reconnects"] >= 1 and res["sources"]["a"]["reconnects"] == 0
    assert b.opens >= 2


def test_a_hanging_source_is_stalled_and_does_not_block_the_other(tmp_path):
    a, b = FakeLive("cam-a"), FakeLive("cam-b")
    stop = threading.Event()
    res = {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("a", a), SourceSpec("b", b)], tmp_path / "o",
        multi=MultiSourceOptions(status_every_s=0.1, stall_s=0.5, stop_event=stop))))
    th.start()
    try:
        end = time.monotonic() + 60
        seen = False
        while time.monotonic() < end and not seen:
            try:
                st = json.loads((tmp_path / "o" / "status.json").read_text())["sources"]
            except (OSError, ValueError):
                st = {}
            if st and st["b"]["frames"] > 5 and not b.stall.is_set():
                b.stall.set()
                fa = st["a"]["frames"]
            seen = bool(st) and b.stall.is_set() and st["b"]["state"] == "stalled" and st["a"]["frames"] > fa + 25
            time.sleep(0.05)
        assert seen, f"status {st}"
    finally:
        b.released.set()
        stop.set()
        th.join(30)
    assert res["sources"]["a"]["state"] == "connected"


def test_sources_yaml(tmp_path, videos):
    y = tmp_path / "s.yaml"
    y.write_text(f"sources:\n  - name: bridge\n    path: {videos[2]}\n  - url: rtsp://127.0.0.1:1/x\n  - {videos[2]}\n")
    specs = load_sources_yaml(y)
    assert [s.name for s in specs] == ["bridge", "cam1", "v2"]
    y.write_text("sources: 3\n")
    with pytest.raises(DataError, match="sources"):
        load_sources_yaml(y)


def test_bad_count_line_is_one_error(videos, tmp_path):
    with pytest.raises(InputError, match="--count-line"):
        run_multistream(SquareFinder(), [str(videos[2])], tmp_path / "o", multi=MultiSourceOptions(count_line="1,2,3"))


def test_options_objects_and_keywords_are_one_setting():
    """Keywords land in whichever object has the field and win over it; a one-source-only setting is
    one error; an unknown keyword is a TypeError, as for any function."""
    o, m = multistream_options(StreamOptions(conf=0.3, retries=2), MultiSourceOptions(video=True),
                               {"retries": 7, "interval_s": 5.0})
    assert (o.conf, o.retries, m.video, m.interval_s) == (0.3, 7, True, 5.0)
    for bad in ({"tile": 640}, {"jsonl": "d.jsonl"}, {"track": False}):
        with pytest.raises(InputError):
            multistream_options(None, None, bad)
    with pytest.raises(TypeError, match="no_such"):
        multistream_options(None, None, {"no_such": 1})


def test_cli_several_files_with_the_onnx_model(nano_onnx, small_video, tmp_path, capsys):
    from cli_helpers import run_cli

    from flowdet.cli import main

    code = 0
    try:
        main(["stream", "--model", str(nano_onnx), str(small_video), str(small_video), "--out-dir", str(tmp_path / "o"),
              "--max-frames", "6", "--threads", "1", "--count-line", "0,120,320,120", "--video"])
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr().out
    assert code == 0 and "total: 12 frames" in out
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert set(s["sources"]) == {"synthetic", "synthetic_1"} and s["stopped_by"] == "max_frames"
    assert all((tmp_path / "o" / n / "annotated.mp4").exists() for n in s["sources"])
    code, err = run_cli(capsys, "stream", "--model", str(nano_onnx), str(small_video), "--count-line", "1,2,x,4")
    assert code == 2 and "--count-line" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(capsys, "stream", "--model", str(nano_onnx))
    assert code == 2 and "SOURCE" in err


def test_cli_out_dir_follows_the_run_folder_rule(nano_onnx, small_video, tmp_path, capsys):
    """A used --out-dir becomes <out-dir>2 (the earlier counts stay); --exist-ok reuses it without
    leaving the earlier run's annotated.mp4 beside the new jsonl."""
    from cli_helpers import run_cli

    base = ["stream", "--model", str(nano_onnx), str(small_video), "--max-frames", "3", "--threads", "1"]
    o = tmp_path / "o"
    assert run_cli(capsys, *base, "--out-dir", str(o), "--video")[0] == 0
    first = (o / "summary.json").read_text()
    assert (o / "synthetic" / "annotated.mp4").exists()
    code, err = run_cli(capsys, *base, "--out-dir", str(o))
    assert code == 0 and f"writing to {tmp_path / 'o2'}" in err
    assert (o / "summary.json").read_text() == first and (o / "synthetic" / "annotated.mp4").exists()
    assert (tmp_path / "o2" / "summary.json").exists() and not (tmp_path / "o2" / "synthetic" / "annotated.mp4").exists()
    assert run_cli(capsys, *base, "--out-dir", str(o), "--exist-ok")[0] == 0
    assert not (o / "synthetic" / "annotated.mp4").exists() and not (tmp_path / "o3").exists()
