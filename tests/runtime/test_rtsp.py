"""Two real RTSP sources (gst-rtsp-server on loopback, via the system python): one server is killed
mid-run and restarted; the other keeps its frames flowing and its count, the killed one reconnects and
counts again. Skips with a reason when gst-rtsp-server or ffmpeg is not installed."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from multistream_helpers import SquareFinder, square_video, wait_for_status

from flowdet.runtime.stream.multistream import MultiSourceOptions, SourceSpec, run_multistream
from flowdet.runtime.stream.sources import CaptureSource
from flowdet.runtime.stream.stream import StreamOptions

SYS_PY = "/usr/bin/python3"
SERVER = Path(__file__).resolve().parents[1] / "rtsp_server.py"


def _gst_ok() -> str | None:
    if not Path(SYS_PY).exists():
        return "no system python"
    r = subprocess.run([SYS_PY, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                        "from gi.repository import GstRtspServer"], capture_output=True, timeout=30)
    if r.returncode:
        return "gst-rtsp-server not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{good,bad,ugly})"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not installed (needed to write the H.264 test video)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, video: Path) -> subprocess.Popen:
    p = subprocess.Popen([SYS_PY, str(SERVER), str(port), str(video)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        pytest.fail(f"rtsp server did not start: {line}")
    return p


@pytest.fixture(scope="module")
def h264_video(tmp_path_factory) -> Path:
    reason = _gst_ok()
    if reason:
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("rtsp")
    src = square_video(d / "sq.mp4", 40, 40 * 20)   # 32 s at 25 fps: longer than the test
    out = d / "sq264.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-g", "25", str(out)], check=True, timeout=120)
    return out


def test_rtsp_kill_and_restart(h264_video, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    pa, pb = _free_port(), _free_port()
    servers = {"a": _serve(pa, h264_video), "b": _serve(pb, h264_video)}
    stop = threading.Event()
    res: dict = {}
    specs = [SourceSpec("a", CaptureSource(f"rtsp://127.0.0.1:{pa}/cam", open_timeout_s=3)),
             SourceSpec("b", CaptureSource(f"rtsp://127.0.0.1:{pb}/cam", open_timeout_s=3))]
    th = threading.Thread(target=lambda: res.update(run_multistream(
        SquareFinder(), specs, tmp_path / "o", StreamOptions(backoff_s=0.1),
        MultiSourceOptions(status_every_s=0.1, max_backoff_s=0.5, stop_event=stop))))
    th.start()

    def wait_for(cond, limit=60.0):
        return wait_for_status(tmp_path / "o", cond, limit)

    try:
        s0, t0 = wait_for(lambda s: s["a"]["count"] >= 2 and s["b"]["count"] >= 2)
        s1, t1 = wait_for(lambda s: s["a"]["frames"] >= s0["a"]["frames"] + 25)
        fps_before = (s1["a"]["frames"] - s0["a"]["frames"]) / (t1 - t0)
        servers["b"].kill()
        servers["b"].wait(10)
        s2, t2 = wait_for(lambda s: s["b"]["state"] in ("reconnecting", "failed"))
        count_b = s2["b"]["count"]
        s3, t3 = wait_for(lambda s: s["a"]["frames"] >= s2["a"]["frames"] + 50)   # a goes on while b is down
        fps_during = (s3["a"]["frames"] - s2["a"]["frames"]) / (t3 - t2)
        assert s3["b"]["state"] in ("reconnecting", "failed") and s3["b"]["count"] == count_b
        servers["b"] = _serve(pb, h264_video)
        wait_for(lambda s: s["b"]["state"] == "connected" and s["b"]["count"] >= count_b + 2)
        print(f"\nrtsp: a {fps_before:.1f} fps before, {fps_during:.1f} fps while b was down")
    finally:
        stop.set()
        th.join(30)
        for p in servers.values():
            p.kill()
            p.wait(10)
    assert res["sources"]["b"]["reconnects"] >= 1 and res["sources"]["a"]["reconnects"] == 0
    assert res["sources"]["a"]["state"] == "connected"
