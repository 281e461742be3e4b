"""`flowdet demo --quick` end to end: every report section, every number backed by summary.json."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flowdet.demo.report import SECTIONS, fmt


def _numbers(obj) -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.add(fmt(obj))
    return out


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    r = subprocess.run([sys.executable, "-m", "flowdet", "demo", "--out", str(out), "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report:" in r.stderr.splitlines()[-1]
    return out


@pytest.mark.slow
def test_report_has_every_section_and_only_measured_numbers(quick_demo: Path) -> None:
    md = (quick_demo / "report.md").read_text()
    html = (quick_demo / "report.html").read_text()
    summary = json.loads((quick_demo / "summary.json").read_text())
    for section in SECTIONS:
        assert f"## {section}" in md, section
        assert f"<h2>{section}</h2>" in html, section
    # every value cell of every table is a number that summary.json holds (formatted the same way)
    known = _numbers(summary)
    cells = []
    for line in md.splitlines():
        if line.startswith("|") and not set(line) <= set("|-"):
            parts = [c.strip() for c in line.strip("|").split("|")]
            cells += [c for c in parts[1:] if re.fullmatch(r"-?[\d.]+(e[-+]\d+)?", c)]
    assert len(cells) > 20
    missing = [c for c in cells if c not in known]
    assert not missing, f"numbers in report.md not in summary.json: {missing}"
    # the pipeline really ran: stages timed, the stream read frames, parity was checked
    assert set(summary["stage_seconds"]) >= {"synthesize", "mine", "pretrain", "train", "eval", "export", "stream"}
    assert summary["stream"]["frames"] > 0
    assert summary["export"]["parity_ok"] is True
    for key in ("pr_curve", "pred_grid", "train_loss", "box_hist"):
        assert (quick_demo / summary["assets"][key]).is_file(), key
    assert (quick_demo / "annotated.mp4").stat().st_size > 0
    assert len((quick_demo / "detections.jsonl").read_text().splitlines()) == summary["stream"]["frames"]


@pytest.mark.slow
def test_rerun_resumes_and_other_settings_refuse(quick_demo: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "flowdet", "demo", "--out", str(quick_demo), "--quick"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "skipped" in r.stderr
    r = subprocess.run([sys.executable, "-m", "flowdet", "demo", "--out", str(quick_demo), "--quick",
                        "--method", "patch-contrast"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr


def test_report_rounds_times_and_fills_the_deployment_table_from_the_summary():
    from flowdet.demo.report import render_markdown

    assert fmt(614.91) == "614.9" and fmt(0.4567) == "0.457" and fmt(12345.6) == "12346"
    md = render_markdown({"metrics": {"best_f1_conf": 0.31, "best_f1": 0.62, "tp_at_best": 17, "fn_at_best": 4},
                          "stage_seconds": {"train": 614.91}})
    assert "| TP | 17 |" in md and "| score threshold (best F1) | 0.310 |" in md and "614.9 |" in md
    assert "## Run this on your own data" in md and "docs/own-data.md" in md
