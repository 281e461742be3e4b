"""metrics.csv appends (resume-safe) and the loss plot."""
from __future__ import annotations

from flowdet.engine.logger import MetricsLog


def test_append_replaces_rows_from_a_resumed_epoch_and_plots(tmp_path):
    log = MetricsLog(tmp_path / "metrics.csv")
    log.append({"epoch": 0, "loss": 3.0})
    log.append({"epoch": 1, "loss": 2.0, "AP": 0.1})
    log.append({"epoch": 1, "loss": 1.5})  # epoch 1 again after a resume: replaces the old row
    rows = log.rows()
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[1]["loss"] == "1.5"
    png = log.plot(tmp_path / "loss.png", keys=["loss"])
    assert png is not None and png.stat().st_size > 0
    assert MetricsLog(tmp_path / "none.csv").plot(tmp_path / "x.png") is None
