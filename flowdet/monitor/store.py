"""The counts database: SQLite by default (a path), PostgreSQL by URL — through SQLAlchemy Core.

- :func:`open_store` checks everything a run needs *before* any source opens: the URL parses, the
  server answers (or the SQLite file can be created), the tables are migrated
  (:mod:`flowdet.monitor.schema`). Anything wrong is one :class:`StoreError` line.
- :class:`StoreSink` writes a run's events as they happen through **one writer thread** (SQLite
  allows one writer; the inference loop never waits for the disk or the network). Its queue is
  bounded: while the database is away, batches are retried with backoff, events beyond the queue
  are dropped and counted (``health()`` → status.json), and counting goes on.
- SQLite runs in WAL mode: readers (``flowdet counts``, ``flowdet serve``) never block the writer.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

from flowdet import __version__, log
from flowdet.errors import FlowdetError
from flowdet.monitor.events import CountedItem, IntervalRollup
from flowdet.utils import require

QUEUE_MAX = 20_000     # events held while the database is away (~ hours of a busy river at 1 item/s)
BATCH_MAX = 500        # events per transaction
CONNECT_TIMEOUT_S = 5
CLOSE_TIMEOUT_S = 10.0  # at exit, how long a database that went away may hold the last events


class StoreError(FlowdetError):
    """--db is malformed, unreachable, unwritable or of an unknown schema."""


def _sa() -> Any:
    return require("sqlalchemy", "store")


def database_url(db: str | Path) -> Any:
    """``--db`` → a SQLAlchemy URL: a path is a SQLite file; ``sqlite:///…`` and ``postgresql://…``
    (driver psycopg 3 unless one is named) are taken as they are."""
    sa = _sa()
    text = str(db)
    if "://" not in text:
        return sa.engine.URL.create("sqlite", database=str(Path(text).expanduser().absolute()))
    try:
        url = sa.engine.make_url(text)
        url.port  # noqa: B018 — a malformed port raises only when read
    except (sa.exc.ArgumentError, ValueError) as e:
        raise StoreError(f"malformed database URL ({e})", field="--db") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if not url.database:
            raise StoreError("the PostgreSQL URL names no database (postgresql://user@host:5432/DB)", field="--db")
    elif backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise StoreError("a SQLite URL needs a file (sqlite:///path/counts.sqlite)", field="--db")
    else:
        raise StoreError(f"unsupported database {backend!r}: use a SQLite path or a postgresql:// URL", field="--db")
    return url


def shown(url: Any) -> str:
    """The URL as it may be printed (no password)."""
    return url.render_as_string(hide_password=True) if url.get_backend_name() != "sqlite" else str(url.database)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")     # readers never block the one writer
    cur.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: a kill loses no committed row
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def create_engine(db: str | Path) -> Any:
    """An engine for ``db`` (nothing connected yet). PostgreSQL's password may also come from
    ``PGPASSWORD`` / ``~/.pgpass`` (libpq's usual places), never needed on the command line."""
    sa = _sa()
    url = database_url(db)
    if url.get_backend_name() == "sqlite":
        p = Path(url.database)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder ({e.strerror})", path=p.parent, field="--db") from None
        engine = sa.create_engine(url, connect_args={"timeout": CONNECT_TIMEOUT_S})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    require("psycopg", "store")
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def open_store(db: str | Path) -> Any:
    """Connect, migrate and return the engine; one :class:`StoreError` line for whatever fails."""
    sa = _sa()   # first: without the extra, one line naming it
    from flowdet.monitor import schema

    engine = create_engine(db)
    where = shown(engine.url)
    try:
        schema.migrate(engine)
    except schema.SchemaTooNew as e:
        engine.dispose()
        raise StoreError(str(e), path=where) from None
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"cannot open the database ({_first_line(e)})", path=where, field="--db") from None
    return engine


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


class StoreSink:
    """A run's rows, written by one thread. ``begin`` (synchronous, before the sources open) records
    the run; every other call only queues."""

    kind = "store"
    wants_frames = True   # the dashboard shows each source's latest annotated frame

    def __init__(self, engine: Any, run_id: str, model: str = "", sources: dict[str, str] | None = None):
        from flowdet.monitor import schema

        self.engine, self.run_id, self.t = engine, run_id, schema
        self.q: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self.written = self.dropped = self.errors = self.lost = 0
        self.last_error: str | None = None
        self.failing = False
        self._closing = threading.Event()
        self._stopped_by: str | None = None
        self._begin(model, sources or {})
        self.thread = threading.Thread(target=self._run, name="flowdet-store", daemon=True)
        self.thread.start()

    # -- the Sink protocol -------------------------------------------------------------------------
    def on_item(self, item: CountedItem) -> None:
        self._put(("item", _item_row(item)))

    def on_item_update(self, item: CountedItem) -> None:
        self._put(("item_update", _item_row(item)))

    def on_interval(self, rollup: IntervalRollup) -> None:
        self._put(("interval", rollup.as_dict()))

    def on_health(self, status: dict[str, Any]) -> None:
        self._put(("health", _health_rows(self.run_id, status)))

    def health(self) -> dict[str, Any]:
        return {"written": self.written, "queued": self.q.qsize(), "dropped": self.dropped, "errors": self.errors,
                "ok": not self.failing, "last_error": self.last_error}

    def set_stopped_by(self, reason: str) -> None:
        self._stopped_by = reason

    def close(self) -> None:
        self._put(("end", {"ended": time.time()}))
        self._closing.set()
        self.thread.join(CLOSE_TIMEOUT_S + 2 * BATCH_MAX * 0.01)
        if self.lost or self.q.qsize():
            log.warn(f"database: {self.lost + self.q.qsize()} event(s) not written (the database was away at exit)")
        self.engine.dispose()

    # -- the writer thread -------------------------------------------------------------------------
    def _begin(self, model: str, sources: dict[str, str]) -> None:
        import socket

        sa = _sa()
        try:
            with self.engine.begin() as c:
                c.execute(self.t.runs.insert().values(
                    run_id=self.run_id, started=time.time(), host=socket.gethostname(), model=model,
                    flowdet_version=__version__, sources=json.dumps(sources)))
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(f"cannot write ({_first_line(e)})", path=shown(self.engine.url), field="--db") from None

    def _put(self, op: tuple[str, Any]) -> None:
        try:
            self.q.put_nowait(op)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        sa = _sa()
        pending: list[tuple[str, Any]] = []
        backoff = 0.5
        give_up_at: float | None = None
        while True:
            if not pending:
                try:
                    pending.append(self.q.get(timeout=0.2))
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    continue
                while len(pending) < BATCH_MAX:
                    try:
                        pending.append(self.q.get_nowait())
                    except queue.Empty:
                        break
            try:
                with self.engine.begin() as c:
                    for kind, row in pending:
                        self._apply(c, kind, row)
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:   # away: retry the batch
                self._failed(e)
                if self._closing.is_set():
                    give_up_at = give_up_at or time.monotonic() + CLOSE_TIMEOUT_S
                    if time.monotonic() >= give_up_at:
                        self.lost += len(pending)
                        return
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                continue
            except sa.exc.SQLAlchemyError as e:   # not transient (a table gone, a bad value): drop the batch
                self._failed(e)
                self.dropped += len(pending)
                pending = []
                continue
            if self.failing:
                log.info(f"database: writing again ({shown(self.engine.url)})")
            self.failing, backoff = False, 0.5
            self.written += sum(1 for k, _ in pending if k in ("item", "interval"))
            pending = []

    def _failed(self, e: BaseException) -> None:
        self.errors += 1
        self.last_error = _first_line(e)[:300]
        if not self.failing:
            log.warn(f"database: write failed, counting goes on and retries ({self.last_error})")
        self.failing = True

    def _apply(self, c: Any, kind: str, row: Any) -> None:
        t = self.t
        if kind == "item":
            c.execute(t.items.insert().values(**row))
        elif kind == "item_update":
            keep = ("last_seen", "hits", "score_mean", "score_max", "direction")
            c.execute(t.items.update().where(t.items.c.run_id == row["run_id"], t.items.c.source == row["source"],
                                             t.items.c.track_id == row["track_id"])
                      .values(**{k: row[k] for k in keep}))
        elif kind == "interval":
            c.execute(t.intervals.insert().values(**row))
        elif kind == "health":
            for r in row:
                where = (t.health.c.run_id == r["run_id"], t.health.c.source == r["source"])
                if c.execute(t.health.update().where(*where).values(**r)).rowcount == 0:
                    c.execute(t.health.insert().values(**r))
        elif kind == "end":
            c.execute(t.runs.update().where(t.runs.c.run_id == self.run_id)
                      .values(ended=row["ended"], stopped_by=self._stopped_by))


def _item_row(item: CountedItem) -> dict[str, Any]:
    d = item.as_dict()
    d["x1"], d["y1"], d["x2"], d["y2"] = d.pop("box")
    return d


def _health_rows(run_id: str, status: dict[str, Any]) -> list[dict[str, Any]]:
    now = time.time()
    frames = status.get("frames_jpeg") or {}
    rows = []
    for name, s in status.get("sources", {}).items():
        lat = s.get("latency_ms") or {}
        rows.append({"run_id": run_id, "source": name, "updated": now, "state": s.get("state", "?"),
                     "live": bool(s.get("live")), "fps": s.get("fps"), "latency_p50_ms": lat.get("p50"),
                     "latency_p95_ms": lat.get("p95"), "last_frame_age_s": s.get("last_frame_age_s"),
                     "frames": s.get("frames"), "dropped": s.get("dropped"), "reconnects": s.get("reconnects"),
                     "count": s.get("count"), "error": s.get("error")})
        if name in frames:   # else the row keeps the frame it has
            rows[-1]["frame_jpeg"] = frames[name]
    return rows
