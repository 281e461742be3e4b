"""What training says, in words a person can follow (issue 34).

- the epoch line: loss, AP when evaluated, lr, img/s, ETA; the diagnostics (loss parts, miss_share,
  dropped_tiny, positives/box by size) only with ``-v``;
- in a log file (no terminal, so no tqdm bar): a line every ``train.log_every_s`` seconds with
  iteration i/N, it/s and the ETA, so a 15-minute epoch is not 15 silent minutes;
- the epoch's row of metrics.csv (:func:`epoch_row`: mean losses, miss_share, positives per box by
  size, img/s) and the loss / results plots (:func:`plot_curves`);
- at the end one short table of best.pt's scores and the threshold to deploy at; both full COCO
  layouts go to metrics.json (and to the console with ``-v``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from flowdet import log
from flowdet.detect.loss import BUCKET_NAMES
from flowdet.engine import dist
from flowdet.engine.logger import MetricsLog, plot_results
from flowdet.utils import duration

LOSS_KEYS = ("iou", "obj", "cls", "l1")
# The per-iteration sums a training epoch keeps: LOSS_KEYS, then these (imgs last).
SUM_KEYS = (*LOSS_KEYS, "total", "fg", "miss", "tiny", "out", "imgs")


class IterationLines:
    """Progress lines for a log file: at most one per ``every_s`` seconds (0: every iteration)."""

    def __init__(self, epoch: int, epochs: int, ipe: int, every_s: float, enabled: bool,
                 remaining_after_epoch_s: float | None = None):
        self.epoch, self.epochs, self.ipe, self.every_s, self.enabled = epoch, epochs, ipe, every_s, enabled
        self.after = remaining_after_epoch_s  # the ETA of the epochs after this one, when known
        self.start = self.last = time.perf_counter()

    def step(self, done: int, loss: float) -> None:
        """After iteration ``done`` (1-based) of this epoch."""
        now = time.perf_counter()
        if not self.enabled or done >= self.ipe or now - self.last < self.every_s:
            return
        self.last = now
        its = done / max(now - self.start, 1e-9)
        left = (self.ipe - done) / its
        total = f", run {duration(left + self.after)}" if self.after is not None else ""
        log.info(f"  epoch {self.epoch + 1}/{self.epochs} it {done}/{self.ipe}: loss {loss:.4f}, {its:.2f} it/s, "
                 f"ETA epoch {duration(left)}{total}")


def epoch_row(epoch: int, lr: float, sums: torch.Tensor, buckets: torch.Tensor, elapsed: float, iters: int,
              device: torch.device, unreadable: int = 0) -> dict[str, Any]:
    """The epoch's metrics.csv row from this process's sums (:data:`SUM_KEYS`) and its [boxes, positives]
    per size bucket; under DDP losses are averaged and counts summed over the ranks. Warns about failed
    image reads and a non-finite mean loss."""
    n_loss = len(LOSS_KEYS) + 1
    sums = sums.clone()
    sums[:n_loss] /= max(iters, 1)
    world = dist.world_size()
    if world > 1:  # losses: mean over ranks; counts: sums over ranks
        red = dist.all_reduce_mean(sums.to(device)).cpu()
        sums = torch.cat([red[:n_loss], red[n_loss:] * world])
        buckets = dist.all_reduce_mean(buckets.to(device)).cpu() * world
    s = dict(zip(SUM_KEYS, sums.tolist()))
    # 1-based like the console's "epoch 1/10" (and ultralytics' results.csv): one numbering
    row = {"epoch": epoch + 1, "lr": lr, "loss": s["total"], **{k: s[k] for k in LOSS_KEYS},
           "miss_share": s["miss"] / max(s["fg"], 1.0), "num_fg": s["fg"] / max(s["imgs"], 1),
           "dropped_tiny": int(s["tiny"]), "dropped_out": int(s["out"]),
           **{f"pos_per_box_{k}": (buckets[1, j] / buckets[0, j]).item() if buckets[0, j] > 0 else float("nan")
              for j, k in enumerate(BUCKET_NAMES)},
           "img_s": s["imgs"] / max(elapsed, 1e-9), "time_s": elapsed}
    if unreadable:
        row["unreadable"] = unreadable
        log.warn(f"epoch {epoch + 1}: {unreadable} image read(s) failed; blank images without boxes "
                 "stood in (see the warnings above for the files)")
    if not math.isfinite(row["loss"]):
        log.warn(f"epoch {epoch + 1} mean loss is {row['loss']}")
    return row


def plot_curves(metrics: MetricsLog, out: Path, semi: bool) -> None:
    """loss.png (the loss parts) and results.png (a panel per loss, AP/AP50/APs, lr) in ``out``."""
    semi_keys = ["unl", "pseudo_per_img"] if semi else []
    metrics.plot(out / "loss.png", keys=["loss", *LOSS_KEYS, "miss_share", *semi_keys[:1]], title=str(out))
    plot_results(metrics, out / "results.png", title=str(out),
                 keys=["loss", *LOSS_KEYS, "miss_share", *semi_keys, "AP", "AP50", "APs", "lr"])


def epoch_line(row: dict[str, Any], epochs: int, eta_s: float) -> str:
    """``epoch 3/30: loss 4.1234, AP 0.1234 (AP50 0.301), lr 0.00991, 41.2 img/s, ETA 12m05s``."""
    ap = f", AP {row['AP']:.4f} (AP50 {row['AP50']:.3f})" if "AP" in row else ""
    return (f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}{ap}, lr {row['lr']:.3g}, "
            f"{row['img_s']:.1f} img/s, ETA {duration(eta_s)}")


def diagnostics_line(row: dict[str, Any]) -> str:
    """The loss parts and the assignment diagnostics behind ``-v`` (docs/architecture.md explains them)."""
    return (f"  loss parts iou {row['iou']:.3f} obj {row['obj']:.3f} cls {row['cls']:.3f} l1 {row['l1']:.3f}; "
            f"miss_share {row['miss_share']:.3f} dropped_tiny {row['dropped_tiny']}; positives/box by size "
            + " ".join(f"{k} {row['pos_per_box_' + k]:.2f}" for k in BUCKET_NAMES))


def say_epoch(row: dict[str, Any], epochs: int, eta_s: float, semi_text: str = "") -> None:
    """The epoch line (with the unlabeled side's summary of a teacher–student run), diagnostics with -v."""
    if dist.is_main():
        log.info(epoch_line(row, epochs, eta_s) + semi_text)
        log.debug(diagnostics_line(row))


def short_table(stats: dict[str, Any], epoch: int | None = None) -> str:
    """best.pt's scores in three lines: AP, AP50, APs, AR@1000 and the best-F1 threshold with P/R."""
    head = "best.pt" + (f" (epoch {epoch})" if epoch is not None else "")

    def v(key: str) -> str:
        x = stats.get(key)
        return f"{x:.4f}" if isinstance(x, (int, float)) and x >= 0 else "  n/a "

    lines = [f"{head}:  AP {v('AP')}   AP50 {v('AP50')}   APs {v('APs')}   AR@1000 {v('AR1000')}"]
    if "best_f1_conf" in stats and not stats.get("best_f1"):
        from flowdet.metrics.prf import NOTHING_MATCHED

        lines.append(f"  {NOTHING_MATCHED}")
    elif "best_f1_conf" in stats:
        lines.append(f"  deploy at conf {stats['best_f1_conf']:.3f} (best F1 {stats['best_f1']:.3f} at IoU 0.5): "
                     f"precision {stats['precision_at_best']:.3f}, recall {stats['recall_at_best']:.3f}")
    lines.append("  every COCO metric: metrics.json (and `flowdet -v train …`)")
    return "\n".join(lines)
