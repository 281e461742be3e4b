"""``flowdet counts``: counted items read back from the database — per source, per hour or day
(local time unless ``utc``), as a table, a CSV (``time,source,count``) or an SVG chart of items
per hour per camera. Hours or days without an item are shown as 0 (a quiet hour is an answer too)."""
from __future__ import annotations

import csv
import datetime as _dt
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from flowdet.errors import DataError, InputError
from flowdet.monitor.store import StoreError, create_engine, shown
from flowdet.utils import atomic_write_text, require

BUCKETS = {"hour": 3600, "day": 86400}
MAX_BUCKETS = 100_000          # a table longer than this is a wrong --by, not a report
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def open_for_reading(db: str | Path) -> Any:
    """An engine on an existing flowdet database (never creates or migrates one)."""
    sa = require("sqlalchemy", "store")   # first: without the extra, one line naming it
    from flowdet.monitor import schema

    if "://" not in str(db) and not Path(db).is_file():
        raise DataError("no such database file", path=db, field="--db")
    engine = create_engine(db)
    try:
        with engine.connect() as c:
            v = schema.current_version(c)
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"cannot read the database ({str(getattr(e, 'orig', e)).splitlines()[0]})",
                         path=shown(engine.url), field="--db") from None
    if v == 0 or v > schema.VERSION:
        engine.dispose()
        raise StoreError("not a flowdet counts database" if v == 0 else str(schema.SchemaTooNew(v)),
                         path=shown(engine.url))
    return engine


def item_times(engine: Any, source: str | None = None, since: float | None = None) -> list[tuple[str, float]]:
    """(source, UNIX time) of every counted item, oldest first."""
    from sqlalchemy import select

    from flowdet.monitor.schema import items

    q = select(items.c.source, items.c.time).order_by(items.c.time)
    if source is not None:
        q = q.where(items.c.source == source)
    if since is not None:
        q = q.where(items.c.time >= since)
    with engine.connect() as c:
        return [(s, float(t)) for s, t in c.execute(q)]


def bucket_start(t: float, by: str, utc: bool = False) -> _dt.datetime:
    """The start of the hour / day holding UNIX time ``t`` (this machine's local time unless ``utc``)."""
    d = _dt.datetime.fromtimestamp(t, _dt.timezone.utc) if utc else _dt.datetime.fromtimestamp(t).astimezone()
    d = d.replace(minute=0, second=0, microsecond=0)
    return d.replace(hour=0) if by == "day" else d


def _next(d: _dt.datetime, by: str, utc: bool) -> _dt.datetime:
    """The next bucket; +36 h lands inside the next calendar day also across a 23 or 25 h DST day."""
    return bucket_start(d.timestamp() + (3600 if by == "hour" else 36 * 3600), by, utc)


def count_by(rows: list[tuple[str, float]], by: str, utc: bool = False) -> tuple[list[_dt.datetime], dict[str, list[int]]]:
    """(bucket starts, {source: counts per bucket}) from the first to the last item, empty buckets 0."""
    if by not in BUCKETS:
        raise InputError(f"--by must be one of {', '.join(BUCKETS)}, got {by!r}", field="--by")
    if not rows:
        return [], {}
    per: dict[str, dict[_dt.datetime, int]] = defaultdict(lambda: defaultdict(int))
    for src, t in rows:
        per[src][bucket_start(t, by, utc)] += 1
    first = bucket_start(min(t for _, t in rows), by, utc)
    last = bucket_start(max(t for _, t in rows), by, utc)
    starts = [first]
    while starts[-1] < last:
        starts.append(_next(starts[-1], by, utc))
        if len(starts) > MAX_BUCKETS:
            raise InputError(f"more than {MAX_BUCKETS} {by}s between the first and the last item; use --by day "
                             f"or --source", field="--by")
    return starts, {src: [c[s] for s in starts] for src, c in sorted(per.items())}


def fmt_bucket(d: _dt.datetime, by: str) -> str:
    return d.strftime("%Y-%m-%d") if by == "day" else d.strftime("%Y-%m-%d %H:00%z")


def format_table(starts: list[_dt.datetime], counts: dict[str, list[int]], by: str) -> list[str]:
    """One line per bucket: the time, one column per source, the total; a last line of totals."""
    names = list(counts)
    head = [by] + names + ["total"]
    body = [[fmt_bucket(s, by)] + [str(counts[n][i]) for n in names] + [str(sum(counts[n][i] for n in names))]
            for i, s in enumerate(starts)]
    body.append(["total"] + [str(sum(counts[n])) for n in names] + [str(sum(sum(v) for v in counts.values()))])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    return ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths)))
            for r in [head] + body]


def write_csv(path: str | Path, starts: list[_dt.datetime], counts: dict[str, list[int]]) -> Path:
    """``time,source,count``: one row per source per bucket; ``time`` is ISO 8601 with its offset."""
    p = Path(path)
    lines = [["time", "source", "count"]] + [[s.isoformat(), src, str(c[i])] for src, c in counts.items()
                                             for i, s in enumerate(starts)]
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    atomic_write_text(p, buf.getvalue())
    return p


def _nice_step(raw: float) -> int:
    """The smallest 1, 2 or 5 × 10^k (≥ 1: counts are whole) at least ``raw``."""
    p = 10 ** max(0, math.floor(math.log10(max(raw, 1e-9))))
    return int(next((m * p for m in (1, 2, 5, 10) if m * p >= raw), 10 * p))


def svg_chart(starts: list[_dt.datetime], counts: dict[str, list[int]], by: str, title: str = "",
              width: int = 900, height: int = 360) -> str:
    """A self-contained SVG line chart: items per bucket, one line per source, with a legend."""
    from xml.sax.saxutils import escape

    left, right, top, bottom = 50, 150, 30, 50
    w, h = width - left - right, height - top - bottom
    n = max(len(starts), 1)
    tick = _nice_step(max([max(v) for v in counts.values()] + [1]) / 4)
    ymax = tick * math.ceil(max([max(v) for v in counts.values()] + [1]) / tick)

    def x(i: int) -> float:
        return left + (w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + h - h * v / ymax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">{escape(title or f"items per {by}")}</text>']
    for k in range(0, round(ymax / tick) + 1):
        v = k * tick
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    every = max(1, math.ceil(n / 12))
    for i, s in enumerate(starts):
        if i % every == 0:
            label = s.strftime("%m-%d") if by == "day" else s.strftime("%m-%d %H:00")
            out.append(f'<text x="{x(i):.1f}" y="{top + h + 16}" text-anchor="middle">{label}</text>')
    for j, (src, vals) in enumerate(counts.items()):
        c = PALETTE[j % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        out += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{c}"/>' for i, v in enumerate(vals)]
        out.append(f'<rect x="{left + w + 14}" y="{top + 16 * j}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{left + w + 28}" y="{top + 16 * j + 9}">{escape(src)} ({sum(vals)})</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + h}" stroke="#333"/>'
               f'<line x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}" stroke="#333"/></svg>')
    return "\n".join(out)


def counts_report(db: str | Path, by: str = "hour", source: str | None = None, csv_path: str | Path | None = None,
                  plot: str | Path | None = None, utc: bool = False) -> dict[str, Any]:
    """Read ``db`` and return ``{"lines": table, "starts", "counts", "total"}``; write the CSV / SVG when asked."""
    if plot is not None and Path(plot).suffix.lower() != ".svg":
        raise InputError(f"the chart is an SVG: give a .svg file, got {plot}", field="--plot")
    engine = open_for_reading(db)
    try:
        rows = item_times(engine, source)
    finally:
        engine.dispose()
    starts, counts = count_by(rows, by, utc)
    if csv_path is not None:
        write_csv(csv_path, starts, counts)
    if plot is not None:
        atomic_write_text(Path(plot), svg_chart(starts, counts, by, f"items per {by} per camera"))
    return {"lines": format_table(starts, counts, by) if rows else [], "starts": starts, "counts": counts,
            "total": len(rows)}
