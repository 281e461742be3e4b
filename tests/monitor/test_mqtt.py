"""`--mqtt`: a message per counted item and per interval on the real Mosquitto (127.0.0.1:1883),
and a broker of our own (mosquitto on a free port) killed mid-run: counting goes on, the bounded
queue drops and counts, the client reconnects when it is back."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
from multistream_helpers import FakeLive, SquareFinder, square_video, wait_for_status

mqtt = pytest.importorskip("paho.mqtt.client", reason="the 'mqtt' extra (paho-mqtt) is not installed")

from flowdet.monitor.build import build_recorder  # noqa: E402
from flowdet.monitor.mqtt import MqttError, MqttSink, parse_mqtt_url  # noqa: E402
from flowdet.monitor.recorder import Recorder  # noqa: E402
from flowdet.runtime.stream.multistream import SourceSpec, run_multistream  # noqa: E402


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Subscriber:
    """A real MQTT client collecting every message under ``topic/#``."""

    def __init__(self, port: int, topic: str):
        self.messages: list[tuple[str, dict]] = []
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_connect = lambda c, u, f, rc, p=None: (c.subscribe(f"{topic}/#", qos=1), None)[1]
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def _monitor_status(out, cond, limit: float = 60.0) -> dict:
    """status.json's ``monitor`` part once ``cond`` holds for it."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            m = json.loads((out / "status.json").read_text())["monitor"]
            if cond(m):
                return m
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out: {(out / 'status.json').read_text()}")


def test_parse_mqtt_url():
    t = parse_mqtt_url("mqtt://u:p%40ss@broker:1884/river/counts")
    assert (t.host, t.port, t.topic, t.username, t.password) == ("broker", 1884, "river/counts", "u", "p@ss")
    assert parse_mqtt_url("mqtt://broker/x").port == 1883
    for bad in ("http://broker/x", "mqtt://broker", "mqtt://broker:99999/x", "mqtt://b/x/#"):
        with pytest.raises(MqttError):
            parse_mqtt_url(bad)


def test_items_and_intervals_reach_the_broker(tmp_path):
    if not _port_open(1883):
        pytest.skip("no MQTT broker at 127.0.0.1:1883 (Mosquitto)")
    topic = f"flowdet-test/{uuid.uuid4().hex[:8]}"
    sub = Subscriber(1883, topic)
    v = square_video(tmp_path / "v.mp4", 3, frames=110)
    rec = build_recorder(mqtt=f"mqtt://127.0.0.1:1883/{topic}", start_time="1000")
    try:
        s = run_multistream(SquareFinder(), [SourceSpec("river", str(v))], tmp_path / "o", interval_s=1.0,
                            status_every_s=0.1, monitor=rec)
    finally:
        rec.close(None)
    end = time.monotonic() + 20
    while time.monotonic() < end and sum(1 for t, _ in sub.messages if t.endswith("/interval")) < 5:
        time.sleep(0.05)
    sub.close()
    items = [m for t, m in sub.messages if t == f"{topic}/river/item"]
    ivs = [m for t, m in sub.messages if t == f"{topic}/river/interval"]
    assert sorted(m["track_id"] for m in items) == [1, 2, 3] == list(range(1, s["count"] + 1))
    assert all(m["run_id"] == rec.run_id and m["time"] == pytest.approx(1000 + m["video_time"]) for m in items)
    assert len(ivs) == 5 and sum(m["count"] for m in ivs) == 3 and ivs[-1]["cumulative"] == 3   # 110 frames: 4.4 s


@pytest.fixture
def own_broker():
    """A Mosquitto of this test on a free port, which the test can stop and start again."""
    exe = shutil.which("mosquitto") or (shutil.which("mosquitto", path="/usr/sbin"))
    if not exe:
        pytest.skip("mosquitto is not installed (apt install mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Broker:
        proc = None

        def start(self):
            self.proc = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            end = time.monotonic() + 10
            while not _port_open(port):
                assert time.monotonic() < end and self.proc.poll() is None, "mosquitto did not start"
                time.sleep(0.05)

        def stop(self):
            self.proc.terminate()
            self.proc.wait(10)

    b = Broker()
    b.port = port
    b.start()
    yield b
    if b.proc.poll() is None:
        b.stop()


def test_broker_down_mid_run_counting_goes_on(tmp_path, own_broker):
    sink = MqttSink(parse_mqtt_url(f"mqtt://127.0.0.1:{own_broker.port}/t"), "run-1", queue_max=5, max_delay_s=1)
    rec = Recorder([sink])
    cam = FakeLive("cam", fps=50, period=5)
    out, stop, res = tmp_path / "o", threading.Event(), {}
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), [SourceSpec("cam", cam)], out, interval_s=3600, status_every_s=0.1, stop_event=stop,
        monitor=rec)))
    th.start()
    try:
        wait_for_status(out, lambda s: s["cam"]["count"] >= 2 and sink.published >= 2)
        own_broker.stop()
        full = _monitor_status(out, lambda m: m["mqtt"]["dropped"] >= 3)["mqtt"]   # the queue of 5 is full
        assert full["connected"] is False and full["queued"] <= 5 and full["errors"] >= 1
        n_down = json.loads((out / "status.json").read_text())["sources"]["cam"]["count"]
        own_broker.start()
        end = time.monotonic() + 60
        while time.monotonic() < end and not (sink.connected and sink.published >= sink.sent):
            time.sleep(0.1)
        assert sink.connected and sink.published >= sink.sent     # the queued ones went out after reconnect
        wait_for_status(out, lambda s: s["cam"]["count"] > n_down)  # counting never stopped
    finally:
        stop.set()
        th.join(60)
        rec.close()
    # every item (and the one interval, at the end) was either queued for the broker or counted as dropped
    assert res["sources"]["cam"]["counts"]["count"] + 1 == sink.sent + sink.dropped
