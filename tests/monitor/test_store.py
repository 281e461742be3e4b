"""The counts database on a real SQLite file and the real PostgreSQL: rows as events come, the
versioned migration path, and every bad --db as one StoreError line."""
from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

sa = pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")

from flowdet.monitor import schema  # noqa: E402
from flowdet.monitor.events import CountedItem, IntervalRollup  # noqa: E402
from flowdet.monitor.store import StoreError, StoreSink, create_engine, open_store  # noqa: E402


def _item(run_id: str, tid: int, t: float) -> CountedItem:
    return CountedItem(run_id=run_id, source="bridge", track_id=tid, time=t, first_seen=t - 1, last_seen=t,
                       frame=10 * tid, video_time=None, class_id=0, class_name="bottle", score_mean=0.7,
                       score_max=0.9, hits=4, box=(1.0, 2.0, 11.0, 12.0))


def _write_run(db: str) -> str:
    run = str(uuid.uuid4())
    sink = StoreSink(open_store(db), run, model="m.onnx", sources={"bridge": "rtsp://cam"})
    t0 = 1_780_000_000.0
    for k in range(1, 4):
        sink.on_item(_item(run, k, t0 + k))
    later = _item(run, 2, t0 + 2)
    later.last_seen, later.direction, later.hits = t0 + 30, -1, 40
    sink.on_item_update(later)
    sink.on_interval(IntervalRollup(run, "bridge", t0, 60.0, 3, 3, crossings=1))
    sink.on_health({"sources": {"bridge": {"state": "connected", "live": True, "fps": 9.5, "latency_ms":
                                           {"p50": 40.0, "p95": 80.0}, "last_frame_age_s": 0.1, "frames": 100,
                                           "dropped": 2, "reconnects": 1, "count": 3, "error": None}}})
    sink.set_stopped_by("end")
    sink.close()
    assert sink.health()["written"] == 4 and sink.health()["errors"] == 0 and sink.health()["dropped"] == 0
    return run


def _check_rows(db: str, run: str) -> None:
    engine = open_store(db)
    with engine.connect() as c:
        rows = c.execute(sa.select(schema.items).where(schema.items.c.run_id == run)
                         .order_by(schema.items.c.track_id)).mappings().all()
        assert [r["track_id"] for r in rows] == [1, 2, 3]
        assert rows[1]["direction"] == -1 and rows[1]["hits"] == 40 and rows[1]["last_seen"] == 1_780_000_030.0
        assert rows[0]["direction"] is None and (rows[0]["x1"], rows[0]["y2"]) == (1.0, 12.0)
        assert rows[0]["class_name"] == "bottle" and rows[0]["time"] == 1_780_000_001.0
        iv = c.execute(sa.select(schema.intervals).where(schema.intervals.c.run_id == run)).mappings().one()
        assert (iv["count"], iv["cumulative"], iv["crossings"], iv["seconds"]) == (3, 3, 1, 60.0)
        h = c.execute(sa.select(schema.health).where(schema.health.c.run_id == run)).mappings().one()
        assert h["state"] == "connected" and h["reconnects"] == 1 and h["latency_p50_ms"] == 40.0
        r = c.execute(sa.select(schema.runs).where(schema.runs.c.run_id == run)).mappings().one()
        assert r["stopped_by"] == "end" and r["ended"] >= r["started"] and "rtsp://cam" in r["sources"]
        assert c.execute(sa.select(schema.schema_version.c.version)).scalar() == schema.VERSION
    engine.dispose()


def test_sqlite_file_rows_and_a_second_run_appends(tmp_path):
    db = str(tmp_path / "sub" / "counts.sqlite")       # the folder is made
    first = _write_run(db)
    second = _write_run(db)
    assert first != second
    _check_rows(db, first)
    _check_rows(db, second)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == 6
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    con.close()


def test_postgresql_rows(pg_url):
    run = _write_run(pg_url)
    _check_rows(pg_url, run)


def test_boxes_starting_together_migrate_once(pg_url):
    import threading

    errors = []

    def start():
        try:
            open_store(pg_url).dispose()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    engine = open_store(pg_url)
    with engine.connect() as c:
        assert c.execute(sa.select(schema.schema_version.c.version)).scalars().all() == [schema.VERSION]
    engine.dispose()


def test_migration_from_an_older_version_keeps_the_rows(tmp_path):
    db = str(tmp_path / "old.sqlite")
    engine = create_engine(db)
    schema.migrate(engine, upto=1)                    # a database written by the version-1 flowdet
    with engine.begin() as c:
        c.execute(schema.runs.insert().values(run_id="old-run", started=1.0))
        assert not sa.inspect(c).has_table("health")
    engine.dispose()
    engine = open_store(db)
    with engine.connect() as c:
        assert c.execute(sa.select(schema.schema_version.c.version)).scalar() == schema.VERSION
        assert sa.inspect(c).has_table("health")
        assert c.execute(sa.select(schema.runs.c.run_id)).scalars().all() == ["old-run"]
    engine.dispose()


def test_migration_adds_a_column_to_an_existing_table(tmp_path):
    db = str(tmp_path / "v2.sqlite")
    engine = create_engine(db)
    schema.migrate(engine, upto=2)
    with engine.begin() as c:                          # the health table as version 2 made it
        c.execute(sa.text("ALTER TABLE health DROP COLUMN frame_jpeg"))
        c.execute(sa.text("INSERT INTO health (run_id, source, updated, state, live) VALUES ('r', 's', 1.0, 'connected', 1)"))
    engine.dispose()
    engine = open_store(db)
    with engine.connect() as c:
        assert "frame_jpeg" in {col["name"] for col in sa.inspect(c).get_columns("health")}
        assert c.execute(sa.select(schema.health.c.source, schema.health.c.frame_jpeg)).all() == [("s", None)]
    engine.dispose()


def test_a_newer_schema_is_refused(tmp_path):
    db = str(tmp_path / "new.sqlite")
    open_store(db).dispose()
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = ?", (schema.VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema version"):
        open_store(db)


@pytest.mark.parametrize("db, words", [
    ("postgresql://postgres@127.0.0.1:notaport/test", "malformed"),
    ("mysql://u@localhost/x", "unsupported"),
    ("postgresql://postgres@127.0.0.1:1/test", "cannot open"),      # nothing listens on port 1
    ("sqlite://", "needs a file"),
])
def test_bad_db_is_one_store_error(db, words):
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=words) as e:
        open_store(db)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 30


def test_unwritable_sqlite_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        open_store(str(blocker / "counts.sqlite"))
