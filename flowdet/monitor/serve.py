"""``flowdet serve --db …``: a dashboard of the counts database (Flask; the ``serve`` extra).

Every asset is served from this package (``flowdet/monitor/static/``: one HTML page, its script
and style; the chart is drawn as SVG by the script) — nothing from a CDN, so it works on a box
without internet. The page polls ``/api/summary`` every few seconds; per source it shows items per
hour over the last 24 hours, today's total (local midnight of the server) and the latest health:
state, fps, latency, last frame age, reconnects, up / down.

A source is **down** when its latest health says so (reconnecting, failed, stalled, connecting) or
when its run stopped reporting for ``stale_s`` seconds while live (killed, box off); a file that
ended is ``ended``. Each source's latest annotated frame (stored with its health every status) is
``/api/frame/<source>.jpg``. Read-only: the server never writes the database.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flowdet.errors import FlowdetError
from flowdet.utils import require

STATIC = Path(__file__).with_name("static")
DOWN_STATES = ("reconnecting", "failed", "stalled", "connecting")
STALE_S = 30.0          # a live source whose run has not reported for this long is down
HOURS = 24


class ServeError(FlowdetError):
    """The dashboard cannot be served (port in use, address not available)."""


def source_health(row: dict[str, Any], now: float, stale_s: float = STALE_S) -> dict[str, Any]:
    """The dashboard's view of one health row: ``up`` / ``down`` / ``ended`` and why."""
    since = now - float(row["updated"])
    state = row["state"]
    if state == "ended":
        shown = "ended"
    elif state in DOWN_STATES:
        shown = "down"
    elif since > stale_s:
        shown, state = "down", f"no report for {since:.0f} s"
    else:
        shown = "up"
    age = row.get("last_frame_age_s")
    return {"status": shown, "state": state, "fps": row.get("fps"), "latency_p50_ms": row.get("latency_p50_ms"),
            "latency_p95_ms": row.get("latency_p95_ms"),
            "last_frame_age_s": None if age is None else round(float(age) + max(0.0, since), 1),
            "reconnects": row.get("reconnects"), "dropped": row.get("dropped"), "error": row.get("error"),
            "updated_s_ago": round(since, 1), "run_id": row["run_id"], "has_frame": bool(row.get("has_frame")),
            "updated": row["updated"]}


def summary(engine: Any, now: float | None = None, hours: int = HOURS, stale_s: float = STALE_S) -> dict[str, Any]:
    """What the page shows: per source its hourly counts (last ``hours``), today's total and health."""
    from sqlalchemy import func, select

    from flowdet.monitor.counts import bucket_start
    from flowdet.monitor.schema import health, items

    now = time.time() if now is None else now
    first_hour = bucket_start(now, "hour").timestamp() - (hours - 1) * 3600
    midnight = bucket_start(now, "day").timestamp()
    since = min(first_hour, midnight)
    with engine.connect() as c:
        rows = c.execute(select(items.c.source, items.c.time).where(items.c.time >= since)).all()
        totals = dict(c.execute(select(items.c.source, func.count()).group_by(items.c.source)).all())
        latest: dict[str, dict[str, Any]] = {}
        cols = [col for col in health.c if col.name != "frame_jpeg"] + [health.c.frame_jpeg.isnot(None).label("has_frame")]
        for r in c.execute(select(*cols).order_by(health.c.updated)).mappings():
            latest[r["source"]] = dict(r)     # the newest row of each source wins
    names = sorted(set(totals) | set(latest))
    out = []
    for name in names:
        hourly = [0] * hours
        today = 0
        for src, t in rows:
            if src != name:
                continue
            k = int((t - first_hour) // 3600)
            if 0 <= k < hours:
                hourly[k] += 1
            today += t >= midnight
        out.append({"name": name, "today": today, "total": int(totals.get(name, 0)), "hourly": hourly,
                    "health": source_health(latest[name], now, stale_s) if name in latest else None})
    return {"now": now, "first_hour": first_hour, "hours": hours, "sources": out}


def make_app(db: str | Path, refresh_s: float = 5.0, stale_s: float = STALE_S) -> Any:
    """The Flask app on ``db`` (opened read-only: a missing or foreign database is one error now)."""
    flask = require("flask", "serve")
    from flowdet.monitor.counts import open_for_reading

    engine = open_for_reading(db)
    app = flask.Flask("flowdet.monitor", static_folder=str(STATIC), static_url_path="/static")

    @app.get("/")
    def index() -> Any:
        html = (STATIC / "dashboard.html").read_text(encoding="utf-8")
        return flask.Response(html.replace("{{REFRESH_MS}}", str(int(refresh_s * 1000))), mimetype="text/html")

    @app.get("/api/summary")
    def api_summary() -> Any:
        return flask.jsonify(summary(engine, stale_s=stale_s))

    @app.get("/api/frame/<source>.jpg")
    def api_frame(source: str) -> Any:
        from sqlalchemy import select

        from flowdet.monitor.schema import health

        with engine.connect() as c:
            jpeg = c.execute(select(health.c.frame_jpeg).where(health.c.source == source, health.c.frame_jpeg.isnot(None))
                             .order_by(health.c.updated.desc()).limit(1)).scalar()
        if jpeg is None:
            flask.abort(404)
        return flask.Response(bytes(jpeg), mimetype="image/jpeg", headers={"Cache-Control": "max-age=3600"})   # the page asks with ?t=<updated>

    @app.get("/healthz")
    def healthz() -> Any:
        return "ok"

    app.config["engine"] = engine
    return app


def make_server(db: str | Path, host: str = "127.0.0.1", port: int = 8080, refresh_s: float = 5.0,
                stale_s: float = STALE_S) -> Any:
    """A threaded WSGI server for the dashboard (``serve_forever()`` / ``shutdown()``); a port in use
    is one :class:`ServeError` line."""
    app = make_app(db, refresh_s, stale_s)
    from werkzeug.serving import make_server as _make

    try:
        return _make(host, port, app, threaded=True)
    except (OSError, SystemExit) as e:   # werkzeug exits on a port in use in some versions
        raise ServeError(f"{host}:{port}: cannot serve ({getattr(e, 'strerror', None) or e})", field="--port") from None
