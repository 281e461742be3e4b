"""Per-epoch metrics.csv (appended, resume-safe), a loss.png of its curves and a results.png (a panel each)."""
from __future__ import annotations

import csv
from pathlib import Path

from flowdet.utils import save_plot


class MetricsLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open() as f:
            return list(csv.DictReader(f))

    def append(self, row: dict) -> None:
        """Append one epoch; on resume, rows at or after this epoch are dropped first."""
        rows = [r for r in self.rows() if "epoch" not in row or int(r.get("epoch", -1)) < int(row["epoch"])]
        rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path)

    def plot(self, out: str | Path, keys: list[str] | None = None, title: str = "training") -> Path | None:
        """Line plot of the numeric columns (or ``keys``) against epoch; returns the PNG path."""
        rows = self.rows()
        if not rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = keys or [k for k in rows[0] if k != "epoch" and _is_num(rows[0][k])]
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            pts = _points(rows, k)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        return save_plot(fig, ax, out)


# Loss terms that are 0 until switched on (L1 in the no-augmentation epochs): no panel, or no
# points, before they are used — a flat zero reads as "broken".
ZERO_UNTIL_USED = ("l1",)


def _points(rows: list[dict], key: str) -> list[tuple[int, float]]:
    import math

    pts = [(int(r["epoch"]), float(r[key])) for r in rows if _is_num(r.get(key, "")) and not math.isnan(float(r[key]))]
    if key in ZERO_UNTIL_USED:
        first = next((i for i, (_, v) in enumerate(pts) if v != 0), len(pts))
        pts = pts[first:]
    return pts


def results_figure(rows: list[dict], keys: list[str], title: str = ""):
    """The results.png figure (None when there is nothing to draw): a panel per column that has
    points, integer epoch ticks, each series a line with markers (an evaluation column connects the
    epochs it was measured at)."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = {k: _points(rows, k) for k in keys}
    keys = [k for k in keys if series[k]]
    if not keys:
        return None
    cols = min(5, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        xs, ys = [p[0] for p in series[k]], [p[1] for p in series[k]]
        ax.plot(xs, ys, "-o", ms=4, lw=1.5, color="tab:blue")
        if len(xs) == 1:  # one evaluation so far: its value, not a lone dot
            ax.annotate(f"{ys[0]:.3g}", (xs[0], ys[0]), xytext=(4, 4), textcoords="offset points", fontsize=8)
        ax.set_title(k, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_results(log: MetricsLog, out: str | Path, keys: list[str], title: str = "") -> Path | None:
    """ultralytics-style results.png: one panel per column (each on its own axis, so a small loss
    term is not flattened by a large one); see :func:`results_figure`."""
    fig = results_figure(log.rows(), keys, title)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def _is_num(v: str) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
