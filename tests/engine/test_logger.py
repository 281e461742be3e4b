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


def test_results_png_has_no_flat_zero_l1_panel_integer_epochs_and_ap_as_lines():
    # Before: a flat-zero l1 panel before the no-aug epochs, ticks at 1.5 epochs, single-dot AP panels.
    from flowdet.engine.logger import results_figure

    rows = [{"epoch": str(e), "loss": str(5.0 - e), "l1": "0" if e < 4 else "0.5", "AP": "0.1" if e % 2 == 0 else ""}
            for e in range(1, 6)]
    fig = results_figure(rows, ["loss", "l1", "AP"])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert list(panels["l1"].lines[0].get_xdata()) == [4, 5]  # from the epoch L1 starts
    ap = panels["AP"].lines[0]
    assert list(ap.get_xdata()) == [2, 4] and ap.get_linestyle() == "-" and ap.get_marker() == "o"
    for ax in panels.values():
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
    no_l1_yet = results_figure([{**r, "l1": "0"} for r in rows], ["loss", "l1", "AP"])
    assert "l1" not in [ax.get_title() for ax in no_l1_yet.axes]
