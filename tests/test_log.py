"""flowdet.log: messages on stderr by level, results on stdout, only rank 0 under torchrun; and
flowdet.errors' exit codes as the CLI reports them."""
from __future__ import annotations

import pytest
from cli_helpers import run_cli

from flowdet import log
from flowdet.config import ConfigError
from flowdet.errors import DataError, FlowdetError, InputError


@pytest.fixture(autouse=True)
def _normal_level():
    yield
    log.set_level(log.NORMAL)


def test_levels(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    log.info("i1")
    log.debug("d1")
    log.warn("w1")
    log.result("r1")
    log.set_level(log.QUIET)
    log.info("i2")
    log.warn("w2")
    log.result("r2")
    log.set_level(log.VERBOSE)
    log.debug("d3")
    out = capsys.readouterr()
    assert out.err.splitlines() == ["i1", "warning: w1", "warning: w2", "d3"]
    assert out.out.splitlines() == ["r1", "r2"]  # results are output, not chatter: -q keeps them
    with pytest.raises(ValueError):
        log.set_level(5)


def test_only_rank0_speaks(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    log.info("from rank 1")
    log.heading("stage")
    log.info("everyone", all_ranks=True)
    assert capsys.readouterr().err.splitlines() == ["everyone"]


def test_heading_is_plain_text_off_a_terminal(capsys):
    log.heading("[1/8] synthesize", style="green")
    assert capsys.readouterr().err == "[1/8] synthesize\n"


def test_errors_format_and_exit_codes():
    e = DataError("no usable images", path="train.json", field="images")
    assert str(e) == "train.json: images: no usable images" and e.exit_code == 2
    c = ConfigError("a.yaml: unknown key 'train.nope'")
    assert isinstance(c, InputError) and isinstance(c, ValueError) and isinstance(c, FlowdetError)


def test_cli_quiet_flag_hides_info_but_keeps_errors(capsys, tmp_path):
    code, err = run_cli(capsys, "-q", "eval", "--model", str(tmp_path / "missing.onnx"), "--ann", "x.json")
    assert code == 2 and err.strip().splitlines() == [f"Error: {tmp_path / 'missing.onnx'}: model file not found"]
