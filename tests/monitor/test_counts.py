"""`flowdet counts`: items per hour / day per camera read back from the database (SQLite and
PostgreSQL), empty hours as 0, the CSV, the SVG chart, and the errors for a missing database."""
from __future__ import annotations

import csv
import uuid
import xml.etree.ElementTree as ET

import pytest
from cli_helpers import run_cli

pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")

from flowdet.monitor.events import CountedItem  # noqa: E402
from flowdet.monitor.store import StoreSink, open_store  # noqa: E402

T0 = 1_780_000_000.0 - 1_780_000_000.0 % 86400 + 6 * 3600     # 06:00 UTC of some day
# bridge: 3 items 06:xx, none 07:xx, 2 items 08:xx; pier: 1 item 07:xx; next day 06:xx: bridge 1
TIMES = {"bridge": [T0 + 60, T0 + 1800, T0 + 3599, T0 + 2 * 3600 + 10, T0 + 2 * 3600 + 20, T0 + 86400 + 5],
         "pier": [T0 + 3600 + 100]}


def _fill(db: str) -> None:
    run = str(uuid.uuid4())
    sink = StoreSink(open_store(db), run)
    for src, times in TIMES.items():
        for k, t in enumerate(times, 1):
            sink.on_item(CountedItem(run, src, k, t, t, t, k, None, 0, "bottle", 0.8, 0.9, 4, (0, 0, 5, 5)))
    sink.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = str(tmp_path / "c.sqlite") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    _fill(url)
    return url


def test_counts_by_hour_table_csv_and_plot(db, tmp_path, capsys):
    code, err = run_cli(capsys, "counts", "--db", db, "--by", "hour", "--utc", "--csv", str(tmp_path / "h.csv"),
                        "--plot", str(tmp_path / "h.svg"))
    assert code == 0, err
    from flowdet.monitor.counts import counts_report

    r = counts_report(db, by="hour", utc=True)
    assert len(r["starts"]) == 24 + 1                         # 06:00 day 1 … 06:00 day 2, empty hours too
    assert r["counts"]["bridge"][:4] == [3, 0, 2, 0] and r["counts"]["bridge"][-1] == 1
    assert r["counts"]["pier"][:3] == [0, 1, 0] and r["total"] == 7
    assert r["lines"][0].split() == ["hour", "bridge", "pier", "total"]
    assert r["lines"][-1].split() == ["total", "6", "1", "7"]
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert len(rows) == 2 * 25 and sum(int(x["count"]) for x in rows) == 7
    assert rows[0] == {"time": r["starts"][0].isoformat(), "source": "bridge", "count": "3"}
    svg = ET.parse(tmp_path / "h.svg").getroot()
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and len(lines[0].get("points").split()) == 25
    assert any("bridge (6)" in (t.text or "") for t in svg.iter("{http://www.w3.org/2000/svg}text"))


def test_counts_by_day_and_one_source(db, capsys):
    from flowdet.monitor.counts import counts_report

    r = counts_report(db, by="day", utc=True)
    assert r["counts"] == {"bridge": [5, 1], "pier": [1, 0]}
    r = counts_report(db, by="day", utc=True, source="pier")
    assert r["counts"] == {"pier": [1]}
    code, err = run_cli(capsys, "counts", "--db", db, "--by", "day", "--utc")
    assert code == 0


def test_cli_prints_the_table(tmp_path, capsys):
    db = str(tmp_path / "c.sqlite")
    _fill(db)
    from flowdet.cli import main

    main(["counts", "--db", db, "--by", "day", "--utc"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["day", "bridge", "pier", "total"] and out[-1].split() == ["total", "6", "1", "7"]


def test_missing_or_foreign_database_is_one_line(tmp_path, capsys):
    code, err = run_cli(capsys, "counts", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no such database file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none.sqlite").exists()
    import sqlite3

    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE t (x)").connection.commit()
    code, err = run_cli(capsys, "counts", "--db", str(tmp_path / "other.sqlite"))
    assert code == 2 and "not a flowdet counts database" in err
    code, err = run_cli(capsys, "counts", "--db", str(tmp_path / "other.sqlite"), "--plot", "x.png")
    assert code == 2 and ".svg" in err
