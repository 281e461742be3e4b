"""`flowdet counts` and `flowdet serve` (parsing only; the work is in flowdet.monitor)."""
from __future__ import annotations

import click

from flowdet.commands import Number


@click.command("counts")
@click.option("--db", required=True, metavar="PATH|URL", help="The database `flowdet stream --db` wrote (SQLite file or postgresql:// URL).")
@click.option("--by", type=click.Choice(["hour", "day"]), default="hour", show_default=True, help="Items per hour or per day.")
@click.option("--source", default=None, help="Only this source (camera) [default: every source, a column each].")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Also write time,source,count rows here.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Also draw items per hour/day per camera to this .svg.")
@click.option("--utc", is_flag=True, help="Hours and days in UTC [default: this machine's local time].")
def counts(db: str, by: str, source: str | None, csv_path: str | None, plot: str | None, utc: bool) -> None:
    """Counted items per hour (or day) per source, read back from a --db of `flowdet stream`:
    a table on stdout (empty hours are 0), optionally a CSV and an SVG chart."""
    from flowdet import log
    from flowdet.monitor.counts import counts_report

    r = counts_report(db, by=by, source=source, csv_path=csv_path, plot=plot, utc=utc)
    if not r["total"]:
        log.warn(f"{db}: no counted items" + (f" of source {source!r}" if source else ""))
    for line in r["lines"]:
        click.echo(line)
    for what, path in (("wrote", csv_path), ("wrote", plot)):
        if path:
            log.info(f"{what} {path}")


@click.command("serve")
@click.option("--db", required=True, metavar="PATH|URL", help="The database `flowdet stream --db` writes (SQLite file or postgresql:// URL).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=Number(1, 65535, integer=True), default=8080, show_default=True)
@click.option("--refresh", type=Number(1, 3600), default=5.0, show_default=True, help="Seconds between the page's updates.")
@click.option("--stale", type=Number(1, 86400), default=30.0, show_default=True,
              help="A live source whose run has not reported for this many seconds is shown down.")
def serve(db: str, host: str, port: int, refresh: float, stale: float) -> None:
    """A dashboard of the counts in a browser: per camera items per hour (last 24 h), today's
    total and health (fps, latency, last frame age, reconnects, up/down); it refreshes by itself.
    Every asset is served locally (no CDN). Read-only. Ctrl-C stops it."""
    from flowdet import log
    from flowdet.monitor.serve import make_server

    server = make_server(db, host, port, refresh_s=refresh, stale_s=stale)
    log.info(f"dashboard of {db} on http://{host}:{server.server_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
