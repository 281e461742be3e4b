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
    for key in ("pr_curve", "pred_grid", "train_loss", "box_hist", "ap_per_epoch", "stream_frame"):
        assert (quick_demo / summary["assets"][key]).is_file(), key
    # the new sections come from this run: metrics.csv's evaluations, the stream, the datasets
    assert [r["epoch"] for r in summary["ap_per_epoch"]] == list(range(1, summary["train"]["epochs"] + 1, 1))
    assert sum(r["train"] for r in summary["sizes"]) == summary["dataset"]["boxes"]
    assert 0 <= summary["stream_frame"]["frame"] < summary["stream"]["frames"]
    state = json.loads((quick_demo / "state.json").read_text())
    assert summary["train"]["best_epoch"] == state["stages"]["train"]["best_epoch"] + 1  # 1-based like metrics.csv
    assert summary["grid"]["TP"] + summary["grid"]["FP"] >= 0 and summary["grid"]["images"] > 0
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


def _summary(k: float) -> dict:
    """A summary whose every new-section number depends on ``k``: a constant in the report shows up."""
    return {"img_size": 416, "eval_interval": 3, "metrics": {"APs_1000": 0.1 * k, "ARm_1000": 0.2 * k, "APl_1000": -1.0},
            "ap_per_epoch": [{"epoch": 3, "AP": 0.01 * k, "AP50": 0.05 * k, "APs": 0.02 * k},
                             {"epoch": 6, "AP": 0.03 * k, "AP50": 0.09 * k, "APs": 0.04 * k}],
            "grid": {"images": int(2 * k), "conf": 0.3, "TP": int(5 * k), "FP": int(3 * k), "miss": int(7 * k)},
            "stream_frame": {"frame": int(4 * k), "time": 0.8 * k, "TP": int(2 * k), "FP": int(k), "miss": int(3 * k)},
            "sizes": [{"size": f"{name} (x)", "train": int(11 * k), "train_share": 0.3 * k / 2, "train_at_input": int(13 * k),
                       "train_at_input_share": 0.35 * k / 2, "val": int(17 * k), "AP": 0.1 * k, "AR": 0.2 * k}
                      for name in ("small", "medium", "large")],
            "assets": {"ap_per_epoch": "ap.png", "stream_frame": "frame.png", "pred_grid": "grid.png"}}


def test_new_report_sections_are_filled_from_the_summary():
    # Before: no AP per epoch, no stream frame, red-only predictions, three overlapping size listings
    # (native.*, resized.* rows and APs/m/l rows in the metrics table).
    from flowdet.demo.report import render_markdown

    md1, md2 = render_markdown(_summary(1.0)), render_markdown(_summary(2.0))
    for md, k in ((md1, 1.0), (md2, 2.0)):
        for section in ("## AP per epoch", "## Validation predictions", "## Box sizes", "## Stream"):
            assert section in md
        assert f"| 6 | {fmt(0.03 * k)} | {fmt(0.09 * k)} | {fmt(0.04 * k)} |" in md  # AP table row
        assert "![AP per epoch](ap.png)" in md and "![a frame of the stream](frame.png)" in md
        assert f"Frame {int(4 * k)} (t = {fmt(0.8 * k)} s)" in md and f"{int(2 * k)} TP, {int(k)} FP, {int(3 * k)} missed" in md
        assert f"| TP | {int(5 * k)} |" in md and f"| missed labels | {int(7 * k)} |" in md
        assert "green: TP" in md and "red: FP" in md and "orange: missed" in md
        assert f"| small (x) | {int(11 * k)} | {fmt(0.15 * k)} | {int(13 * k)} |" in md
        assert "every 3 epoch(s)" in md
        known = _numbers(_summary(k))
        cells = [c.strip() for line in md.splitlines() if line.startswith("|") and not set(line) <= set("|-")
                 for c in line.strip("|").split("|")[1:] if re.fullmatch(r"-?[\d.]+(e[-+]\d+)?", c.strip())]
        assert cells and not [c for c in cells if c not in known]
    assert md1 != md2
    # one size table: no per-size AP rows in the metrics table, no native.* / resized.* rows
    assert "APs maxDets=1000" not in md1 and "native." not in md1 and "resized." not in md1
    assert md1.count("| size (box area) |") == 1
    no_evals = render_markdown({"metrics": {}})
    assert "no evaluation logged" in no_evals and "_(not measured in this run)_" in no_evals


def test_outcome_drawing_counts_and_colours_tp_fp_miss():
    import numpy as np

    from flowdet.demo.draw import COLOURS, draw_outcomes

    img = np.full((100, 200, 3), 90, np.uint8)
    gt = np.array([[10, 10, 30, 30], [100, 50, 120, 70], [150, 10, 170, 30]], np.float32)
    pred = np.array([[11, 11, 31, 31], [60, 60, 80, 80], [100, 50, 120, 70], [101, 51, 121, 71]], np.float32)
    vis, counts = draw_outcomes(img, pred, np.array([0.9, 0.8, 0.7, 0.95]), gt, width=400)
    # the 0.95 box takes the second label first (by score), so the 0.7 duplicate is an FP
    assert counts == {"TP": 2, "FP": 2, "miss": 1} and vis.shape == (200, 400, 3)
    assert tuple(vis[2 * 10 - 3, 2 * 160]) == COLOURS["miss"]   # the missed label's top edge (pad 3 px)
    assert tuple(vis[2 * 70, 2 * 60 - 1]) == COLOURS["FP"]       # the FP's left edge, scaled ×2 (pad 1 px)


def test_sections_read_the_run_artifacts(tmp_path):
    import cv2
    import numpy as np

    from flowdet.demo.sections import ap_per_epoch, plot_ap_per_epoch, stream_frame

    (tmp_path / "metrics.csv").write_text("epoch,loss,AP,AP50,APs\n1,3.0,,,\n2,2.5,0.125,0.25,0.0625\n")
    rows = ap_per_epoch(tmp_path / "metrics.csv")
    assert rows == [{"epoch": 2, "AP": 0.125, "AP50": 0.25, "APs": 0.0625}]  # the epoch without eval is left out
    assert plot_ap_per_epoch(rows, tmp_path / "ap.png").stat().st_size > 0 and plot_ap_per_epoch([], tmp_path / "x.png") is None
    video = tmp_path / "v.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for k in range(3):
        w.write(np.full((48, 64, 3), 40 * k, np.uint8))
    w.release()
    ann = {"images": [{"id": k + 1, "frame_index": k} for k in range(3)],
           "annotations": [{"image_id": 2, "bbox": [10, 10, 10, 10]}, {"image_id": 2, "bbox": [40, 20, 8, 8]},
                           {"image_id": 3, "bbox": [5, 5, 10, 10]}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    dets = [{"frame": 0, "time": 0.0, "boxes": [[1, 1, 9, 9]], "scores": [0.9]},
            {"frame": 1, "time": 0.2, "boxes": [[10, 10, 20, 20]], "scores": [0.6]},
            {"frame": 2, "time": 0.4, "boxes": [], "scores": []}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(d) for d in dets) + "\n")
    fr = stream_frame(video, tmp_path / "ann.json", tmp_path / "d.jsonl", tmp_path / "f.png", width=128)
    assert {k: fr[k] for k in ("frame", "TP", "FP", "miss")} == {"frame": 1, "TP": 1, "FP": 0, "miss": 1}
    assert fr["time"] == 0.2 and cv2.imread(fr["path"]).shape[1] == 128


def test_grid_at_the_deployment_threshold_readable_legend_and_names():
    """Issue 34: the grid was drawn at 0.300 next to a 0.560 deployment threshold, the legend read
    "TP: prediction matching a label (score): 13", tables showed `classes.bottle`, `parity_ok True`."""
    from flowdet.demo.draw import legend_line
    from flowdet.demo.grid import FALLBACK_CONF, deployment_conf
    from flowdet.demo.report import render_markdown

    m = {"best_f1_conf": 0.56, "best_f1": 0.8, "precision_at_best": 0.821}
    assert deployment_conf(m) == 0.56 and deployment_conf({"best_f1_conf": 0.0, "best_f1": 0.0}) == FALLBACK_CONF
    assert legend_line("TP", 13) == "TP: 13 predictions matching a label (score on the box)"
    md = render_markdown({"metrics": m, "grid": {"conf": 0.56, "images": 6, "TP": 3, "FP": 1, "miss": 2},
                          "dataset": {"classes.bottle": 120, "boxes": 120}, "export": {"parity_ok": True}})
    assert "Predictions at score ≥ 0.560 (the deployment threshold)" in md
    assert "| labels of class bottle | 120 |" in md and "| parity check passed | yes |" in md
    assert "classes.bottle" not in md and "parity_ok" not in md and "True" not in md


def test_quick_report_says_the_run_was_too_short_instead_of_precision_one():
    from flowdet.demo.report import render_markdown

    md = render_markdown({"mode": "quick", "metrics": {"best_f1_conf": 0.0, "best_f1": 0.0, "precision_at_best": 1.0,
                                                       "recall_at_best": 0.0, "tp_at_best": 0}})
    assert "too short to detect anything" in md and "`--quick`" in md
    assert "| precision | 1.000 |" not in md and "| score threshold (best F1) |" not in md


def test_loss_curves_explain_the_step_when_augmentation_stops():
    """The training loss steps up where mosaic stops and YOLOX adds the L1 term: the report says so, at the
    epoch the schedule gives, and says nothing when the run has no such phase."""
    from flowdet.demo.report import loss_jump_note

    text = " ".join(loss_jump_note({"epochs": 36, "no_aug_epochs": 6}))
    assert "epoch 31" in text and "L1" in text and "last 6 epochs" in text
    assert loss_jump_note({"epochs": 3, "no_aug_epochs": 0}) == []
    assert loss_jump_note({}) == []
