"""The edge install: without the monitor extras, `flowdet stream` runs as before and never imports
flowdet.monitor; asking for --db / --metrics-port / --mqtt / serve names the extra in one line."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from no_torch import REPO

BLOCK_EXTRAS = textwrap.dedent("""
    import importlib.abc, sys
    class _NoExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("sqlalchemy", "psycopg", "prometheus_client", "paho", "flask", "werkzeug"):
                raise ModuleNotFoundError(f"No module named '{name}' (blocked by the test)")
            return None
    sys.meta_path.insert(0, _NoExtras())
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_EXTRAS + textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=REPO, timeout=300, env={"PYTHONPATH": f"{REPO}:{REPO / 'tests'}",
                                                                 "PATH": "/usr/bin:/bin"})


def test_stream_without_flags_never_imports_the_monitor(tmp_path):
    r = _run(f"""
        import sys
        from pathlib import Path
        from multistream_helpers import SquareFinder, square_video
        from flowdet.runtime.stream.multistream import run_multistream
        v = square_video(Path({str(tmp_path)!r}) / "v.mp4", 2, frames=90)
        s = run_multistream(SquareFinder(), [str(v)], {str(tmp_path / "o")!r}, status_every_s=0.2)
        assert s["count"] == 2, s["count"]
        print(sorted(m for m in sys.modules if m.startswith("flowdet.monitor")))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_each_flag_names_its_extra(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    for args, extra in ((["--db", str(tmp_path / "c.sqlite")], "store"), (["--metrics-port", "9"], "metrics"),
                        (["--mqtt", "mqtt://127.0.0.1/t"], "mqtt")):
        r = _run(f"""
            from flowdet.cli import main
            main(["stream", "--model", {str(model)!r}, "rtsp://127.0.0.1:1/x", "--out-dir", {str(tmp_path / "o")!r},
                  *{args!r}])
        """)
        assert r.returncode == 2 and f"flowdet[{extra}]" in r.stderr, (args, r.stderr[-1000:])
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    r = _run(f"""
        from flowdet.cli import main
        main(["serve", "--db", {str(tmp_path / "c.sqlite")!r}])
    """)
    assert r.returncode == 2 and "flowdet[" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
