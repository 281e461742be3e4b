"""`flowdet serve`: the dashboard in a real headless Chromium (Debian's chromium + chromedriver via
selenium): the page loads from local assets only, shows the counts a test stream wrote, and a
camera taken down mid-run turns "down" without a reload. Skips with the reason when Chromium,
its driver or selenium is absent."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import pytest
from multistream_helpers import FakeLive, SquareFinder, square_video, wait_for_status

pytest.importorskip("flask", reason="the 'serve' extra (Flask) is not installed")
sa = pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")

from flowdet.monitor.build import build_recorder  # noqa: E402
from flowdet.monitor.serve import ServeError, make_server, source_health, summary  # noqa: E402
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream  # noqa: E402

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the 'dev' extra)")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        pytest.skip(f"Chromium or its driver is absent ({CHROMIUM}, {DRIVER}: apt install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,800"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _wait(fn, limit: float = 60.0, what: str = ""):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # noqa: BLE001 — the page may be between two renders
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_health_view_rules():
    now = 1000.0
    row = {"run_id": "r", "state": "connected", "live": True, "updated": now - 1, "last_frame_age_s": 0.5}
    assert source_health(row, now)["status"] == "up"
    assert source_health({**row, "state": "reconnecting"}, now)["status"] == "down"
    stale = source_health({**row, "updated": now - 100}, now)
    assert stale["status"] == "down" and "no report" in stale["state"] and stale["last_frame_age_s"] == 100.5
    assert source_health({**row, "state": "ended", "live": False, "updated": 0.0}, now)["status"] == "ended"


def test_dashboard_in_a_real_browser(tmp_path):
    driver = _browser()
    db = str(tmp_path / "counts.sqlite")
    video = square_video(tmp_path / "river.mp4", 3, frames=110)
    cam = FakeLive("cam", fps=25, period=10)
    rec = build_recorder(db=db, start_time=str(time.time() - 10))
    out, stop, res = tmp_path / "o", threading.Event(), {}
    run = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("river", str(video)), SourceSpec("cam", cam)], out, status_every_s=0.2,
        backoff_s=0.1, max_backoff_s=0.2, retries=1, stop_event=stop, monitor=rec)))
    run.start()
    server = None
    try:
        wait_for_status(out, lambda s: s["river"]["frames"] == 110 and s["cam"]["count"] >= 1)
        engine = sa.create_engine(f"sqlite:///{db}")
        _wait(lambda: [x for x in summary(engine)["sources"] if x["name"] == "river" and x["total"] == 3],
              what="the river's 3 rows")
        engine.dispose()
        server = make_server(db, "127.0.0.1", 0, refresh_s=1.0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/"
        driver.get(url)
        def card(name):   # read in one script: the page re-renders every second (no stale elements)
            return driver.execute_script("""
                const c = document.querySelector(`section.card[data-source="${arguments[0]}"]`);
                if (!c) return null;
                return {status: c.getAttribute("data-status"), today: c.querySelector(".today").firstChild.textContent,
                        badge: c.querySelector(".badge").textContent, health: c.querySelector(".health").textContent,
                        frame: c.querySelector("img.frame") ? c.querySelector("img.frame").naturalWidth : 0,
                        bars: [...c.querySelectorAll("rect.bar")].map(b => Number(b.getAttribute("data-count")))};
            """, name)

        river = _wait(lambda: (c := card("river")) and c["today"] == "3" and c, what="river today 3")
        assert len(river["bars"]) == 24 and sum(river["bars"]) == 3
        assert river["status"] in ("up", "ended")
        _wait(lambda: card("cam")["status"] == "up", what="cam up")
        _wait(lambda: card("cam")["frame"] == 320, what="the camera's annotated frame (320 px wide)")
        driver.save_screenshot(str(tmp_path / "dashboard-up.png"))
        cam.down()                                   # the camera goes away; the page is not reloaded
        down = _wait(lambda: (c := card("cam")) and c["status"] == "down" and c, what="cam down")
        assert down["badge"].lower() == "down" and ("reconnecting" in down["health"] or "failed" in down["health"])
        shot = os.environ.get("FLOWDET_DASHBOARD_SCREENSHOT")   # docs/counting.md's picture
        driver.save_screenshot(shot or str(tmp_path / "dashboard-down.png"))
        # every asset came from this server: no other origin in the page's resource list
        origins = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert origins and all(o.startswith(url) for o in origins)
        assert driver.execute_script("return document.getElementById('error').hidden") is True
    finally:
        driver.quit()
        stop.set()
        run.join(60)
        rec.close("stopped")
        if server is not None:
            server.shutdown()


def test_api_and_port_in_use(tmp_path):
    db = str(tmp_path / "c.sqlite")
    build_recorder(db=db).close("end")          # an empty run
    server = make_server(db, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        data = json.loads(urllib.request.urlopen(base + "/api/summary", timeout=10).read())
        assert data["sources"] == [] and data["hours"] == 24
        html = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "/static/dashboard.js" in html and "http" not in html.split("<body")[1]   # nothing external
        assert b"refresh" in urllib.request.urlopen(base + "/static/dashboard.js", timeout=10).read()
        with pytest.raises(ServeError, match="cannot serve"):
            make_server(db, "127.0.0.1", server.server_port)
    finally:
        server.shutdown()
