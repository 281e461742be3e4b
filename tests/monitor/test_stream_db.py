"""`flowdet stream --db`: the multi-source loop writes one row per counted track and the interval
roll-ups as they happen, equal to summary.json; runs append; bad --db is one line before any source
opens; a database that goes away mid-run never stops the counting."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from multistream_helpers import FakeLive, SquareFinder, read_status, square_video, wait_for_status

sa = pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")

from flowdet.monitor import schema  # noqa: E402
from flowdet.monitor.build import build_recorder  # noqa: E402
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream  # noqa: E402

START = "2026-05-01T06:00:00Z"
START_S = 1777615200.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("dbv")
    return {n: square_video(d / f"v{n}.mp4", n, frames=20 * n + 50) for n in (2, 3)}


def _run(db: str, videos: dict, out: Path, start: str | None = START) -> tuple[dict, str]:
    specs = [SourceSpec(f"v{n}", str(p)) for n, p in videos.items()]
    specs.append(SourceSpec("dead", "rtsp://127.0.0.1:1/none"))     # a real RTSP URL nothing answers
    rec = build_recorder(db=db, start_time=start, model="squares", sources={s.name: str(s.source) for s in specs})
    stop = threading.Event()
    res: dict = {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), specs, out, count_line="0,120,320,120", interval_s=1.0, status_every_s=0.1,
        backoff_s=0.05, max_backoff_s=0.1, retries=1, stop_event=stop, monitor=rec)))
    th.start()
    wait_for_status(out, lambda s: all(s.get(f"v{n}", {}).get("frames") == 20 * n + 50 for n in videos)
                    and s["dead"]["state"] == "failed")
    stop.set()
    th.join(60)
    rec.close(res["stopped_by"])
    store = rec.sinks[-1].health()               # after close: everything written, nothing failed
    assert store["errors"] == 0 and store["dropped"] == 0 and store["queued"] == 0
    assert store["written"] == res["count"] + sum(len(v["counts"]["per_interval"]) for v in res["sources"].values()
                                                  if v["frames"])
    return res, rec.run_id


def _rows(db: str, table: sa.Table, run_id: str) -> list[dict]:
    engine = sa.create_engine(db if "://" in db else f"sqlite:///{db}")
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(sa.select(table).where(table.c.run_id == run_id)).mappings()]
    engine.dispose()
    return rows


def _check_run(db: str, summary: dict, run_id: str) -> None:
    items = _rows(db, schema.items, run_id)
    per = {name: s["counts"]["count"] for name, s in summary["sources"].items()}
    assert per == {"v2": 2, "v3": 3, "dead": 0}
    assert {name: sum(1 for r in items if r["source"] == name) for name in per} == per   # rows == summary
    for r in items:       # a file's rows: the start time + the time in the video
        assert r["time"] == pytest.approx(START_S + r["video_time"], abs=1e-3)
        assert START_S <= r["first_seen"] <= r["time"] <= r["last_seen"] < START_S + 10
        assert r["direction"] in (1, -1) and r["class_name"] == "square" and 0.89 < r["score_mean"] <= 0.9
        assert r["x2"] > r["x1"] and r["hits"] >= 3
    assert sorted(r["track_id"] for r in items if r["source"] == "v3") == [1, 2, 3]
    ivs = _rows(db, schema.intervals, run_id)
    assert {n: sum(r["count"] for r in ivs if r["source"] == n) for n in ("v2", "v3")} == {"v2": 2, "v3": 3}
    assert all(r["start"] == pytest.approx(START_S + r["video_start"]) for r in ivs)
    health = {r["source"]: r for r in _rows(db, schema.health, run_id)}
    assert health["dead"]["state"] == "failed" and health["v3"]["state"] == "ended" and health["v3"]["count"] == 3
    assert bytes(health["v3"]["frame_jpeg"])[:2] == b"\xff\xd8" and health["dead"]["frame_jpeg"] is None
    run = _rows(db, schema.runs, run_id)[0]
    assert run["stopped_by"] == "stopped" and run["ended"] is not None


def test_two_files_and_a_dead_source_into_sqlite_twice(videos, tmp_path):
    db = str(tmp_path / "counts.sqlite")
    s1, run1 = _run(db, videos, tmp_path / "o1")
    s2, run2 = _run(db, videos, tmp_path / "o2")
    assert run1 != run2
    _check_run(db, s1, run1)
    _check_run(db, s2, run2)
    st = json.loads((tmp_path / "o2" / "status.json").read_text())
    assert st["monitor"]["run_id"] == run2 and st["monitor"]["store"]["errors"] == 0


def test_same_totals_in_postgresql(videos, tmp_path, pg_url):
    s, run = _run(pg_url, videos, tmp_path / "o")
    _check_run(pg_url.replace("postgresql://", "postgresql+psycopg://"), s, run)


def test_file_mtime_is_the_default_start(videos, tmp_path):
    db = str(tmp_path / "counts.sqlite")
    s, run = _run(db, {3: videos[3]}, tmp_path / "o", start=None)
    mtime = os.stat(videos[3]).st_mtime
    items = _rows(db, schema.items, run)
    assert len(items) == 3 and all(r["time"] == pytest.approx(mtime + r["video_time"], abs=1e-3) for r in items)


def test_database_locked_mid_run_counting_goes_on(tmp_path):
    """Another process holds the SQLite write lock for a while: the writes fail (counted in
    status.json), counting goes on, and once the lock is gone every row is written."""
    db = str(tmp_path / "counts.sqlite")
    cam = FakeLive("cam", fps=50, period=5)
    rec = build_recorder(db=db)
    out = tmp_path / "o"
    stop = threading.Event()
    res: dict = {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("cam", cam)], out, status_every_s=0.1, stop_event=stop, monitor=rec)))
    th.start()
    try:
        wait_for_status(out, lambda s: s["cam"]["count"] >= 2)
        wait_for_status(out, lambda s: True)
        lock = sqlite3.connect(db, timeout=10, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        count_at_lock = read_status(out)["cam"]["count"]
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st = json.loads((out / "status.json").read_text())
            if st["monitor"]["store"]["errors"] >= 1:
                break
            time.sleep(0.1)
        assert st["monitor"]["store"]["errors"] >= 1 and st["monitor"]["store"]["ok"] is False
        assert "locked" in st["monitor"]["store"]["last_error"]
        wait_for_status(out, lambda s: s["cam"]["count"] >= count_at_lock + 3)   # counting went on
        lock.execute("ROLLBACK")
        lock.close()
        wait_for_status(out, lambda s: True)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st = json.loads((out / "status.json").read_text())
            if st["monitor"]["store"]["ok"]:
                break
            time.sleep(0.1)
        assert st["monitor"]["store"]["ok"]
    finally:
        stop.set()
        th.join(60)
        rec.close(res.get("stopped_by"))
    items = _rows(db, schema.items, rec.run_id)
    assert len(items) == res["sources"]["cam"]["counts"]["count"] >= count_at_lock + 3
    assert all(r["video_time"] is None and abs(r["time"] - time.time()) < 300 for r in items)   # live: the clock


def test_cli_bad_db_is_one_line_before_any_source_opens(tmp_path, capsys):
    from cli_helpers import run_cli

    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for db, words in ((str(blocker / "c.sqlite"), "cannot create the folder"),
                      ("postgresql://postgres@127.0.0.1:1/test", "cannot open the database"),
                      ("postgresql://u@h:port/db", "malformed database URL")):
        out = tmp_path / "out"
        code, err = run_cli(capsys, "stream", "--model", str(model), "rtsp://127.0.0.1:1/x", "--db", db,
                            "--out-dir", str(out))
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()                 # nothing opened, nothing written
    code, err = run_cli(capsys, "stream", "--model", str(model), "a.mp4", "--db", str(tmp_path / "c.sqlite"),
                        "--start-time", "yesterday")
    assert code == 2 and "--start-time" in err and len(err.strip().splitlines()) == 1


KILLED_RUN = """
import sys, threading
sys.path.insert(0, {tests!r})
from multistream_helpers import FakeLive, SquareFinder
from flowdet.monitor.build import build_recorder
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream
rec = build_recorder(db={db!r})
run_multistream(SquareFinder(), [SourceSpec("cam", FakeLive("cam", fps=50, period=5))], {out!r}, interval_s=0.5,
                status_every_s=0.1, monitor=rec)
"""


def test_sigkill_loses_at_most_the_current_interval_and_the_next_run_appends(tmp_path):
    import signal
    import subprocess
    import sys

    db, out = str(tmp_path / "counts.sqlite"), tmp_path / "o"
    tests = str(Path(__file__).resolve().parent.parent)
    code = KILLED_RUN.format(tests=tests, db=db, out=str(out))
    p = subprocess.Popen([sys.executable, "-c", code], cwd=Path(tests).parent,
                         env={**os.environ, "PYTHONPATH": str(Path(tests).parent)})
    try:
        wait_for_status(out, lambda s: s["cam"]["count"] >= 20, limit=120)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    con = sqlite3.connect(db)
    (run_id, ended), = con.execute("SELECT run_id, ended FROM runs").fetchall()
    assert ended is None                                    # killed: never closed
    last = con.execute("SELECT start, seconds, cumulative FROM intervals ORDER BY start DESC LIMIT 1").fetchone()
    assert last is not None and last[2] >= 1
    # every item of every closed interval is in the database; only the running interval's may be missing
    n_closed = con.execute("SELECT count(*) FROM items WHERE time < ?", (last[0] + last[1],)).fetchone()[0]
    assert n_closed == last[2]
    n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
    con.close()
    rec = build_recorder(db=db)
    th_stop = threading.Event()
    th = threading.Thread(target=lambda: run_multistream(
        SquareFinder(), [SourceSpec("cam", FakeLive("cam", fps=50, period=5))], tmp_path / "o2", interval_s=0.5,
        status_every_s=0.1, stop_event=th_stop, monitor=rec))
    th.start()
    wait_for_status(tmp_path / "o2", lambda s: s["cam"]["count"] >= 3)
    th_stop.set()
    th.join(60)
    rec.close("stopped")
    con = sqlite3.connect(db)
    runs = dict(con.execute("SELECT run_id, stopped_by FROM runs").fetchall())
    assert set(runs) == {run_id, rec.run_id} and runs[rec.run_id] == "stopped"
    assert con.execute("SELECT count(*) FROM items WHERE run_id = ?", (run_id,)).fetchone()[0] == n_items
    assert con.execute("SELECT count(*) FROM items WHERE run_id = ?", (rec.run_id,)).fetchone()[0] >= 3
    con.close()


def test_cli_stream_with_the_onnx_model_then_counts(nano_onnx, small_video, tmp_path, capsys):
    from flowdet.cli import main

    db = str(tmp_path / "count" / "counts.sqlite")
    # 8 frames of each source: the fixture model already counts several tracks (measured 7 per source),
    # so the rows-equal-summary and `counts` checks below compare non-empty totals
    for _ in range(2):                                 # the second run appends
        main(["stream", "--model", str(nano_onnx), str(small_video), str(small_video), "--out-dir",
              str(tmp_path / "o"), "--max-frames", "8", "--threads", "1", "--conf", "0.05", "--db", db,
              "--start-time", START])
    capsys.readouterr()
    s = json.loads((tmp_path / "o2" / "summary.json").read_text())   # the second run: a new run folder
    con = sqlite3.connect(db)
    runs = con.execute("SELECT run_id, stopped_by, model FROM runs ORDER BY started").fetchall()
    assert len(runs) == 2 and all(r[1] == "max_frames" and r[2] == str(nano_onnx) for r in runs)
    last = runs[-1][0]
    per = dict(con.execute("SELECT source, count(*) FROM items WHERE run_id = ? GROUP BY source", (last,)).fetchall())
    assert {n: per.get(n, 0) for n in s["sources"]} == {n: v["counts"]["count"] for n, v in s["sources"].items()}
    total = con.execute("SELECT count(*) FROM items").fetchone()[0]
    con.close()
    main(["counts", "--db", db, "--by", "day", "--utc"])
    out = capsys.readouterr().out.splitlines()
    assert total and out[-1].split()[-1] == str(total)


def test_postgresql_connections_killed_mid_run(pg_url, tmp_path):
    """The server drops this run's connections (pg_terminate_backend, as a restart or a failover
    does): counting goes on, the writer reconnects, every row is written."""
    app = f"flowdet-test-{os.getpid()}-{time.monotonic_ns()}"
    db = f"{pg_url}&application_name={app}"
    admin = sa.create_engine(pg_url.split("?")[0].replace("postgresql://", "postgresql+psycopg://"))
    cam = FakeLive("cam", fps=50, period=5)
    rec = build_recorder(db=db)
    out, stop, res = tmp_path / "o", threading.Event(), {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("cam", cam)], out, status_every_s=0.1, stop_event=stop, monitor=rec)))
    th.start()
    try:
        wait_for_status(out, lambda s: s["cam"]["count"] >= 2)
        with admin.begin() as c:                     # only this test's own connections
            killed = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE application_name = :a"), {"a": app}).scalar()
        assert killed >= 1
        n = read_status(out)["cam"]["count"]
        wait_for_status(out, lambda s: s["cam"]["count"] >= n + 3)
    finally:
        stop.set()
        th.join(60)
        rec.close(res.get("stopped_by"))
    admin.dispose()
    store = rec.sinks[-1].health()
    assert store["dropped"] == 0 and store["queued"] == 0
    items = _rows(pg_url.replace("postgresql://", "postgresql+psycopg://"), schema.items, rec.run_id)
    assert len(items) == res["sources"]["cam"]["counts"]["count"] >= n + 3
