"""`flowdet stream`: files, folders, live sources (latest-frame, reconnect, loss), Ctrl-C, CLI errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli

from flowdet.runtime.stream.sources import SourceError
from flowdet.runtime.stream.stream import run_stream

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"frames", "frames_read", "dropped", "reconnects", "detections", "det_per_frame", "fps", "seconds",
                "latency_ms", "infer_ms", "stopped_by", "source", "live", "out", "jsonl"}


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_file_stream_every_frame(nano_onnx, small_video, tmp_path):
    s = run_stream(nano_onnx, str(small_video), out=tmp_path / "a.mp4", jsonl=tmp_path / "d.jsonl", conf=0.3,
                   threads=1)
    assert SUMMARY_KEYS <= set(s)
    assert s["stopped_by"] == "end" and s["frames"] == s["frames_read"] == 40 and s["dropped"] == 0
    assert s["fps"] > 0 and s["latency_ms"]["p95"] >= s["latency_ms"]["p50"] > 0
    lines = _read_jsonl(tmp_path / "d.jsonl")
    assert [r["frame"] for r in lines] == list(range(40))
    assert lines[1]["time"] == pytest.approx(1 / 25, abs=1e-3)
    assert sum(len(r["boxes"]) for r in lines) == s["detections"] > 0
    for r in lines:
        assert len(r["boxes"]) == len(r["scores"]) == len(r["class_ids"])
        for b in r["boxes"]:
            assert 0 <= b[0] <= b[2] <= 320 and 0 <= b[1] <= b[3] <= 240
    assert _video_frames(tmp_path / "a.mp4") == 40


def test_real_video_stream(nano_onnx, real_video, tmp_path):
    s = run_stream(nano_onnx, str(real_video), jsonl=tmp_path / "d.jsonl", max_frames=30, threads=1)
    assert s["stopped_by"] == "max_frames" and s["frames"] == 30
    assert len(_read_jsonl(tmp_path / "d.jsonl")) == 30


@pytest.mark.slow
def test_tiled_stream(nano_onnx, small_video, tmp_path):
    s = run_stream(nano_onnx, str(small_video), jsonl=tmp_path / "d.jsonl", tile=160, overlap=0.25, merge="wbf",
                   max_frames=3, threads=1)
    assert s["frames"] == 3 and s["tile"] == {"size": 160, "overlap": 0.25, "merge": "wbf"}


def test_folder_source_mixed_sizes(nano_onnx, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(240, 320), (360, 480), (240, 320)]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("ignored")
    s = run_stream(nano_onnx, str(folder), out=tmp_path / "o.mp4", jsonl=tmp_path / "d.jsonl", threads=1)
    assert s["frames"] == 3 and not s["live"]
    lines = _read_jsonl(tmp_path / "d.jsonl")
    assert [r["file"] for r in lines] == ["000.png", "001.png", "002.png"] and lines[0]["time"] is None
    assert _video_frames(tmp_path / "o.mp4") == 3


class FlakyLiveSource:
    """A live source that loses the signal after ``fail_after`` frames of each connection and whose
    reopen fails ``refuse`` times before it works again (or forever with refuse=-1)."""

    live, fps = True, 30.0
    description = "fake live"

    def __init__(self, fail_after: int = 5, refuse: int = 1, delay_s: float = 0.0):
        self.fail_after, self.refuse, self.delay_s = fail_after, refuse, delay_s
        self.opens = self.sent = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens > 1 and (self.refuse < 0 or self.opens - 1 <= self.refuse):
            raise SourceError("refused")
        self.sent = 0

    def read(self):
        if self.sent >= self.fail_after:
            return None
        self.sent += 1
        time.sleep(self.delay_s)
        img = np.full((120, 160, 3), (self.sent * 20) % 255, np.uint8)
        return img, time.time(), None

    def close(self) -> None:
        pass


def test_live_source_reconnects(nano_onnx, tmp_path):
    src = FlakyLiveSource(fail_after=5, refuse=1, delay_s=0.01)
    s = run_stream(nano_onnx, src, jsonl=tmp_path / "d.jsonl", max_frames=8, backoff_s=0.01, threads=1)
    assert s["stopped_by"] == "max_frames" and s["frames"] == 8 and s["live"]
    assert s["reconnects"] >= 1 and src.opens >= 3  # initial open, one refused, one that worked


def test_live_source_lost_gives_up(nano_onnx):
    src = FlakyLiveSource(fail_after=3, refuse=-1)
    t = time.perf_counter()
    s = run_stream(nano_onnx, src, retries=3, backoff_s=0.01, threads=1)
    assert s["stopped_by"] == "source_lost" and s["frames_read"] == 3
    assert src.opens == 1 + 3  # bounded retries
    assert time.perf_counter() - t < 30


def test_latest_frame_policy_drops_stale_frames():
    class SlowPredictor:
        names, img_size = ["plastic"], (320, 320)

        def predict(self, images, conf=0.25, iou=0.65):
            from flowdet.core.detections import Detections

            time.sleep(0.03)
            return [Detections() for _ in images]

    src = FlakyLiveSource(fail_after=10**9, delay_s=0.002)  # ~500 fps camera, ~33 fps model
    s = run_stream(SlowPredictor(), src, max_frames=15)
    assert s["frames"] == 15 and s["dropped"] > 15
    assert s["latency_ms"]["p50"] < 150  # never a backlog: each frame is at most one model-step old


class _MJPEG(BaseHTTPRequestHandler):
    """An MJPEG-over-HTTP camera that hangs up after ``frames`` frames per connection."""

    frames = 12
    max_connections = 10**9  # later connections get a 503 (the camera went away)
    connections = 0

    def do_GET(self) -> None:
        type(self).connections += 1
        if type(self).connections > self.max_connections:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(self.frames):
                ok, buf = cv2.imencode(".jpg", np.full((120, 160, 3), 10 * i, np.uint8))
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(buf))
                self.wfile.write(buf.tobytes() + b"\r\n")
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def test_http_stream_reconnects(nano_onnx, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MJPEG)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg"
    try:
        if not cv2.VideoCapture(url, cv2.CAP_FFMPEG).isOpened():
            pytest.skip("this OpenCV build cannot read MJPEG over HTTP")
        s = run_stream(nano_onnx, url, jsonl=tmp_path / "d.jsonl", max_frames=20, backoff_s=0.05, threads=1)
    finally:
        server.shutdown()
    assert s["live"] and s["frames"] == 20 and s["reconnects"] >= 1
    assert s["frames"] + s["dropped"] <= s["frames_read"] + 1


def test_cli_lost_http_source_exits_3(nano_onnx, tmp_path, capsys):
    handler = type("OneShot", (_MJPEG,), {"frames": 5, "max_connections": 1, "connections": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg"
    try:
        code, err = run_cli(capsys, "stream", "--model", str(nano_onnx), url, "--jsonl", str(tmp_path / "d.jsonl"),
                         "--retries", "2", "--threads", "1")
    finally:
        server.shutdown()
    assert code == 3 and "source lost, gave up after 2 reconnect attempts" in err
    assert err.strip().splitlines()[-1].startswith("Error:")
    assert handler.connections == 3  # the first, then exactly --retries attempts
    assert 1 <= len(_read_jsonl(tmp_path / "d.jsonl")) <= 5


def test_sigint_leaves_playable_video_and_whole_jsonl(nano_onnx, video_factory, tmp_path):
    video = video_factory(tmp_path / "long.mp4", frames=600)
    out, jl = tmp_path / "o.mp4", tmp_path / "d.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "flowdet", "stream", "--model", str(nano_onnx), str(video),
                             "--out", str(out), "--jsonl", str(jl), "--threads", "1"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if jl.exists() and jl.read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "stream ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "summary:" in stdout and "stopped by interrupt" in stdout
    lines = _read_jsonl(jl)  # every line parses
    assert 5 <= len(lines) < 600
    assert f"frames {len(lines)} " in stdout
    assert _video_frames(out) == len(lines) >= 1




@pytest.mark.parametrize("extra, needle", [
    (["does/not/exist.mp4"], "source not found"),
    (["http://127.0.0.1:9/none.mjpg"], "cannot open"),
])
def test_cli_source_errors_exit_2(nano_onnx, capsys, extra, needle):
    code, err = run_cli(capsys, "stream", "--model", str(nano_onnx), *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_cli_show_on_headless_opencv_exits_2(nano_onnx, small_video, capsys):
    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    code, err = run_cli(capsys, "stream", "--model", str(nano_onnx), str(small_video), "--show")
    assert code == 2 and "--show" in err and len(err.strip().splitlines()) == 1


class _OneMovingBox:
    """A Predictor stand-in: one box moving 2 px per frame, and a low-score box (kept out of the jsonl)."""

    names = ["bottle"]

    def __init__(self):
        self.k = 0

    def predict(self, images, conf=0.25, iou=0.65):
        from flowdet.core.detections import Detections

        out = []
        for _ in images:
            x = 20.0 + 2 * self.k
            self.k += 1
            out.append(Detections(np.array([[x, 50, x + 12, 60], [200, 100, 210, 110]], np.float32),
                                  np.array([0.9, 0.15], np.float32), np.zeros(2, np.int64)))
        return out


def test_single_source_jsonl_has_track_ids_and_count(small_video, tmp_path):
    s = run_stream(_OneMovingBox(), str(small_video), jsonl=tmp_path / "d.jsonl", conf=0.3, max_frames=12)
    lines = _read_jsonl(tmp_path / "d.jsonl")
    assert s["count"] == 1 and s["detections"] == 12          # the 0.15 box is tracked-for, not reported
    assert all(len(r["boxes"]) == 1 for r in lines)
    assert [r["tracks"][0][0] if r["tracks"] else 0 for r in lines] == [0, 0, 0] + [1] * 9   # confirmed at hit 4
    assert lines[-1]["count"] == 1 and lines[5]["tracks"][0][1] == pytest.approx(30.0, abs=0.5)


def _flowdet_env() -> dict[str, str]:
    """The environment of a ``python -m flowdet`` child that imports this very flowdet package."""
    import flowdet

    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(Path(flowdet.__file__).resolve().parents[1])}


@pytest.mark.parametrize("multi", [False, True], ids=["one-source", "out-dir"])
def test_sigterm_stops_like_ctrl_c_playable_video_and_summary(nano_onnx, video_factory, tmp_path, multi):
    """What systemd / `docker stop` send: before, the default action killed the process mid-write, the
    mp4 had no index (unplayable) and --out-dir had no summary.json."""
    video = video_factory(tmp_path / "long.mp4", frames=600)
    if multi:
        out, jl = tmp_path / "run" / "long" / "annotated.mp4", tmp_path / "run" / "long" / "detections.jsonl"
        args = ["--out-dir", str(tmp_path / "run"), "--video"]
    else:
        out, jl = tmp_path / "o.mp4", tmp_path / "d.jsonl"
        args = ["--out", str(out), "--jsonl", str(jl)]
    proc = subprocess.Popen([sys.executable, "-m", "flowdet", "stream", "--model", str(nano_onnx), str(video), *args,
                             "--threads", "1"], cwd=tmp_path, env=_flowdet_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if jl.exists() and jl.read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "stream ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    lines = _read_jsonl(jl)  # every line parses
    assert 5 <= len(lines) < 600
    assert _video_frames(out) == len(lines)  # the writer was released: the mp4 plays to its last frame
    if multi:
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["stopped_by"] == "interrupt" and summary["signal"] == "SIGTERM"
        assert summary["frames"] == len(lines)
    else:
        assert "stopped by interrupt" in stdout


class _StalledLiveSource:
    """A live source that opens but never delivers a frame: the reader reconnects forever."""

    live, fps, description = True, 25.0, "stalled camera"

    def open(self) -> None:
        pass

    def read(self):
        time.sleep(0.02)
        return None

    def close(self) -> None:
        pass


@pytest.mark.timeout(300)  # the session's ONNX model may be built inside this test's time
def test_duration_ends_a_single_stalled_source(nano_onnx):
    """--duration was ignored with one source: a stalled live stream reconnected forever."""
    t = time.perf_counter()
    s = run_stream(nano_onnx, _StalledLiveSource(), threads=1, retries=10**9, backoff_s=0.01, max_seconds=1.0)
    assert s["stopped_by"] == "max_seconds" and s["frames"] == 0
    assert time.perf_counter() - t < 15


def test_cli_duration_reaches_the_single_source_loop(monkeypatch, small_video, capsys):
    import flowdet.runtime.stream.stream as stream_mod

    seen = {}

    def fake_run_stream(model, source, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(stream_mod, "run_stream", fake_run_stream)
    run_cli(capsys, "stream", "--model", str(small_video), str(small_video), "--duration", "2.5")
    assert seen.get("max_seconds") == 2.5
