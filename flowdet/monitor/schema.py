"""The counts database's tables (SQLAlchemy Core) and its versioned migrations.

Times are UNIX seconds (``DOUBLE``/``REAL``): the same in SQLite and PostgreSQL, exact, and one
function away from a date in either (``datetime(time, 'unixepoch')``, ``to_timestamp(time)``).

Migrations: ``schema_version`` holds one row, the version the tables are at. :data:`MIGRATIONS`
are applied in order from there, each in its own transaction, the version row bumped with it; a
database written by a newer flowdet (a higher version) is refused instead of being written wrong.
A new column or table is a new step appended here — never an edit of an old one.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

runs = Table(
    "runs", metadata,
    Column("run_id", String(36), primary_key=True),
    Column("started", Float, nullable=False),
    Column("ended", Float),
    Column("stopped_by", String(32)),
    Column("host", String(255)),
    Column("model", Text),
    Column("flowdet_version", String(32)),
    Column("sources", Text),            # JSON: {name: source description}
)

items = Table(
    "items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("source", String(255), nullable=False),
    Column("track_id", Integer, nullable=False),
    Column("time", Float, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("frame", Integer, nullable=False),
    Column("video_time", Float),
    Column("class_id", Integer, nullable=False),
    Column("class_name", String(255), nullable=False),
    Column("score_mean", Float, nullable=False),
    Column("score_max", Float, nullable=False),
    Column("hits", Integer, nullable=False),
    Column("x1", Float, nullable=False), Column("y1", Float, nullable=False),
    Column("x2", Float, nullable=False), Column("y2", Float, nullable=False),
    Column("direction", SmallInteger),
    UniqueConstraint("run_id", "source", "track_id", name="items_track"),
    Index("items_source_time", "source", "time"),
)

intervals = Table(
    "intervals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("source", String(255), nullable=False),
    Column("start", Float, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("cumulative", Integer, nullable=False),
    Column("crossings", Integer),
    Column("video_start", Float),
    Index("intervals_source_start", "source", "start"),
)

# Version 2: the latest health of every source of every run (what the dashboard shows).
health = Table(
    "health", metadata,
    Column("run_id", String(36), primary_key=True),
    Column("source", String(255), primary_key=True),
    Column("updated", Float, nullable=False),
    Column("state", String(32), nullable=False),
    Column("live", Boolean, nullable=False),
    Column("fps", Float),
    Column("latency_p50_ms", Float),
    Column("latency_p95_ms", Float),
    Column("last_frame_age_s", Float),
    Column("frames", Integer),
    Column("dropped", Integer),
    Column("reconnects", Integer),
    Column("count", Integer),
    Column("error", Text),
    Column("frame_jpeg", LargeBinary),  # version 3: the latest annotated frame (JPEG, ≤ 640 px wide)
)


def _v1(conn: Any) -> None:
    metadata.create_all(conn, tables=[runs, items, intervals])


def _v2(conn: Any) -> None:
    metadata.create_all(conn, tables=[health])


def _v3(conn: Any) -> None:
    # A version-2 table gets the column; a table made by _v2 just now (from today's definition) has it.
    if "frame_jpeg" not in {c["name"] for c in inspect(conn).get_columns("health")}:
        kind = LargeBinary().compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE health ADD COLUMN frame_jpeg {kind}"))


MIGRATIONS: list[Callable[[Any], None]] = [_v1, _v2, _v3]   # step i brings version i to i + 1
VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    def __init__(self, found: int):
        super().__init__(f"the database is at schema version {found}, this flowdet knows up to {VERSION}: "
                         f"upgrade flowdet or use another --db")
        self.found = found


def current_version(conn: Any) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    v = conn.execute(select(schema_version.c.version)).scalar()
    return int(v or 0)


MIGRATION_LOCK = 0x666C6F77   # PostgreSQL advisory lock key ("flow"): many boxes may start at once


def migrate(engine: Any, upto: int = VERSION) -> int:
    """Bring the tables to version ``upto`` (default: the newest); return the version found before.
    On PostgreSQL the whole migration holds an advisory lock, so boxes starting together migrate
    once, one after the other (SQLite serialises writers by itself)."""
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if pg:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
        try:
            with conn.begin():
                metadata.create_all(conn, tables=[schema_version])
                found = current_version(conn)
                if found > VERSION:
                    raise SchemaTooNew(found)
                if conn.execute(select(schema_version.c.version)).first() is None:
                    conn.execute(schema_version.insert().values(version=0))
            for v in range(found, upto):
                with conn.begin():
                    MIGRATIONS[v](conn)
                    conn.execute(schema_version.update().values(version=v + 1))
        finally:
            if pg:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
    return found
