"""`--metrics-port`: /metrics scraped over HTTP during a run and read by prometheus_client's own
exposition-format parser; the items counter equals the database rows; a port in use is one line."""
from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest
from multistream_helpers import FakeLive, SquareFinder, square_video, wait_for_status

pytest.importorskip("prometheus_client", reason="the 'metrics' extra (prometheus_client) is not installed")
sa = pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from flowdet.monitor.build import build_recorder  # noqa: E402
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_scrape_during_a_run(tmp_path):
    v = square_video(tmp_path / "v.mp4", 3, frames=110)
    port = _free_port()
    db = str(tmp_path / "c.sqlite")
    rec = build_recorder(db=db, metrics_port=port, model="squares.onnx", metrics_host="127.0.0.1")
    dead = FakeLive("rtsp://dead", never_opens=True)
    out, stop, res = tmp_path / "o", threading.Event(), {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("river", str(v)), SourceSpec("dead", dead)], out, status_every_s=0.1,
        backoff_s=0.05, max_backoff_s=0.1, retries=1, stop_event=stop, monitor=rec)))
    th.start()
    try:
        wait_for_status(out, lambda s: s["river"]["frames"] == 110 and s["dead"]["state"] == "failed")
        engine = sa.create_engine(f"sqlite:///{db}")
        end = time.monotonic() + 30
        while time.monotonic() < end:     # the writer thread is behind by a batch at most
            with engine.connect() as c:
                rows = c.execute(sa.text("SELECT count(*) FROM items WHERE source = 'river'")).scalar()
            if rows == 3:
                break
            time.sleep(0.1)
        engine.dispose()
        wait_for_status(out, lambda s: True)
        m = _scrape(port)                 # while the run is still going (the dead source keeps it alive)
    finally:
        stop.set()
        th.join(60)
        rec.close("stopped")
    assert rows == 3
    assert m[("flowdet_items_total", (("class", "square"), ("source", "river")))] == rows
    assert m[("flowdet_items_total", (("class", "square"), ("source", "dead")))] == 0
    assert m[("flowdet_frames_processed_total", (("source", "river"),))] == 110
    assert m[("flowdet_source_up", (("source", "dead"),))] == 0
    assert m[("flowdet_reconnects_total", (("source", "dead"),))] == 0
    assert m[("flowdet_frame_latency_seconds_count", (("source", "river"),))] == 110
    assert m[("flowdet_frame_latency_seconds_bucket", (("le", "+Inf"), ("source", "river")))] == 110
    assert m[("flowdet_monitor_errors_total", (("sink", "store"),))] == 0
    info = [k for k in m if k[0] == "flowdet_model_info"]
    assert info and ("model", "squares.onnx") in info[0][1]
    with pytest.raises(OSError):          # closed: the port is free again
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_port_in_use_is_one_line_exit_2(tmp_path, capsys):
    from cli_helpers import run_cli

    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        code, err = run_cli(capsys, "stream", "--model", str(model), "rtsp://127.0.0.1:1/x", "--metrics-port",
                            str(port), "--out-dir", str(tmp_path / "o"))
    assert code == 2 and f"port {port}" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
