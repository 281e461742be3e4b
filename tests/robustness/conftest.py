"""Fixtures of the robustness suite: the CLI in-process (a subprocess costs seconds), a tiny
checkpoint and ONNX model at 64 px, and the assertion every case shares — no traceback, the
exit code, and for errors exactly one ``Error:`` line naming the file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from shared_build import built_once


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        lines = [ln for ln in self.err.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1, self.err
        return lines[0]

    def fails(self, *needles: str) -> str:
        """Exit 2 with one ``Error:`` line containing every needle; returns that line."""
        assert "Traceback" not in self.err, self.err
        assert self.code == 2, (self.code, self.out, self.err)
        line = self.error_line()
        for n in needles:
            assert n in line, (n, line)
        return line

    def ok(self, code: int = 0) -> Result:
        assert "Traceback" not in self.err and "Error:" not in self.err, self.err
        assert self.code == code, (self.code, self.out, self.err)
        return self


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` runs ``flowdet`` in-process. An exception escaping ``main`` (a traceback for a
    user) propagates and fails the test by itself."""
    from flowdet.cli import main

    def run(*args) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        got = capsys.readouterr()
        return Result(code, got.out, got.err)

    return run


@pytest.fixture(autouse=True)
def _one_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def ckpt64(tmp_path_factory) -> Path:
    """A random-init nano checkpoint at 64 px (tests/export's recipe, smaller)."""
    import importlib.util

    def build(d: Path) -> None:
        # the shared recipe of tests/conftest.py (a plain function, not a fixture), loaded by path
        spec = importlib.util.spec_from_file_location("_flowdet_tests_conftest", Path(__file__).parents[1] / "conftest.py")
        shared = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shared)
        shared.make_checkpoint(d / "nano64.pt", img_size=64)

    return built_once(tmp_path_factory, "ckpt64", build) / "nano64.pt"


@pytest.fixture(scope="session")
def onnx64(ckpt64, tmp_path_factory) -> Path:
    from flowdet.export.onnx_export import export_onnx

    def build(d: Path) -> None:
        export_onnx(ckpt64, d / "nano64.onnx", dynamic_batch=True, parity=False, log=lambda m: None)

    return built_once(tmp_path_factory, "onnx64", build) / "nano64.onnx"
