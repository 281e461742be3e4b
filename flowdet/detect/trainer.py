"""The detector training loop: one object holding model, EMA, optimizer, schedule, scaler and data.

Exact resume: the checkpoint holds everything that changes while training (weights, EMA, optimizer
buffers, scaler, schedule position, RNG states, best AP) and the data pipeline draws nothing from
global RNGs (see flowdet.data.dataset), so epoch e after a restart is epoch e of a straight run.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flowdet import __version__, log
from flowdet.config import save_config, to_dict
from flowdet.data.dataset import DetectionDataset, build_loader
from flowdet.detect.backbone import load_backbone
from flowdet.detect.config import DetectConfig, input_hw
from flowdet.detect.io import check_resumable, inference_checkpoint
from flowdet.detect.loss import BUCKET_NAMES, YOLOXLoss
from flowdet.detect.train_data import echo, load_sets
from flowdet.detect.train_log import (
    LOSS_KEYS,
    SUM_KEYS,
    IterationLines,
    epoch_row,
    plot_curves,
    say_epoch,
    short_table,
)
from flowdet.engine import dist
from flowdet.engine.checkpoint import (
    load_checkpoint,
    remove_stale_temps,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from flowdet.engine.ema import ModelEMA
from flowdet.engine.logger import MetricsLog
from flowdet.engine.schedule import WarmupCosine, param_groups, set_lr
from flowdet.errors import FlowdetError, ModelFileError
from flowdet.models.yolox import build_model


class Trainer:
    def __init__(self, cfg: DetectConfig, device: torch.device, resume: Path | None = None, origin: str | None = None):
        self.cfg, self.device, self.out, self.origin = cfg, device, Path(cfg.out), origin or "config"
        t = cfg.train
        self.cuda = device.type == "cuda"
        self.amp = t.amp and self.cuda
        # NHWC on CPU too: oneDNN's NHWC convs made one nano / nano-d training step 1.2–1.45× faster
        # (1 thread, batch 8 at 832×480; docs/benchmarks.md)
        self.channels_last = t.channels_last
        self.rank, self.world = dist.rank(), dist.world_size()
        torch.manual_seed(t.seed)  # weight init; replaced by the checkpoint on resume

        # cfg may change here: an auto size settled, a data.yaml's own val split recorded
        cfg, self.train_set, self.val_set = load_sets(cfg)
        self.cfg = cfg
        self.names, self.cat_ids = self.train_set.names, self.train_set.cat_ids
        model = self._build_model()
        self.model: nn.Module = model

        self.hw = input_hw(cfg)
        self.dataset = DetectionDataset(self.train_set.records, self.hw, cfg.augment, t.seed, t.epochs,
                                        augment=True, cache=cfg.data.cache)
        per_rank = max(1, t.batch // self.world)
        self.loader = build_loader(self.dataset, per_rank, t.workers, t.seed, True, self.rank, self.world,
                                   cfg.augment.multiscale, cfg.augment.multiscale_every)
        self.ipe = len(self.loader)
        self.base_lr = cfg.base_lr()
        self.optimizer = self._build_optimizer(model)
        self.schedule = WarmupCosine(self.base_lr, t.epochs * self.ipe, round(t.warmup_epochs * self.ipe),
                                     min(cfg.augment.no_aug_epochs, t.epochs) * self.ipe, t.min_lr_ratio, t.warmup_lr)
        self.ema = ModelEMA(model, t.ema_decay, tau=t.ema_tau) if t.ema else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        g = cfg.assign
        self.loss_fn = YOLOXLoss(len(self.names), model.strides, t.iou_loss, center_radius=g.center_radius,
                                 topk=g.topk, min_box_side=g.min_box_side, min_k=g.min_k, assign_cost=g.cost,
                                 nwd_constant=g.nwd_constant, nwd_weight=g.nwd_loss, soft_obj=g.soft_obj,
                                 small_box_below=g.small_box_below)
        from flowdet.detect import semi

        # the unlabeled side when semi.unlabeled names frames, else None
        self.semi = semi.for_run(cfg, self.train_set, self.val_set, self.hw, model.strides, self.ipe, per_rank,
                                 device, self.channels_last, self.amp)
        self.start_epoch, self.best_ap, self.best_epoch, self.last_metrics = 0, -1.0, -1, None
        self.best_metrics: dict[str, Any] | None = None  # the evaluation that chose best.pt
        self.epoch_s: list[float] = []  # wall time of each epoch this process ran (eval included): the ETA
        if resume is not None:
            self._resume(resume)
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if self.cuda else None)
        self.log = MetricsLog(self.out / "metrics.csv")

    def _build_model(self) -> nn.Module:
        """The model on the device: BN momentum set, the backbone loaded (``backbone_report``), SyncBN
        under DDP on CUDA, NHWC when ``train.channels_last``."""
        cfg, t = self.cfg, self.cfg.train
        model = build_model(cfg.model.size, len(self.names), p2=cfg.model.p2)
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.momentum = t.bn_momentum
        self.backbone_report = None
        if cfg.model.backbone:
            self.backbone_report = load_backbone(model, cfg.model.backbone)
        if t.sync_bn and self.world > 1:
            if self.cuda:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                echo("note: train.sync_bn needs CUDA; plain BatchNorm per process on CPU")
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def _build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        t = self.cfg.train
        if t.optimizer == "adamw":
            return torch.optim.AdamW(param_groups(model, t.weight_decay), lr=self.base_lr, betas=(t.momentum, 0.999))
        return torch.optim.SGD(param_groups(model, t.weight_decay), lr=self.base_lr, momentum=t.momentum,
                               nesterov=t.nesterov)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self, epoch: int) -> dict[str, Any]:
        m = unwrap(self.model)
        return {
            "model": m.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "teacher": self.semi.state_dict() if self.semi else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"iteration": (epoch + 1) * self.ipe, "iters_per_epoch": self.ipe},
            "scaler": self.scaler.state_dict(), "rng": rng_state(), "epoch": epoch,
            "config": to_dict(self.cfg), "names": list(self.names), "cat_ids": list(self.cat_ids),
            "img_size": list(self.hw),
            "model_cfg": {"size": m.size, "num_classes": m.num_classes, "p2": m.p2},
            "best_ap": self.best_ap, "best_epoch": self.best_epoch, "metrics": self.last_metrics,
            "best_metrics": self.best_metrics,
            "flowdet_version": __version__,
        }

    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path, "cpu")  # RNG states must stay CPU tensors; weights are copied over
        check_resumable(ck, path)
        if (ck.get("model_cfg", {}).get("size") != self.cfg.model.size
                or bool(ck.get("model_cfg", {}).get("p2", False)) != self.cfg.model.p2):
            raise ModelFileError(f"{path}: model size {ck.get('model_cfg')} differs from model.size "
                                 f"'{self.cfg.model.size}'")
        try:
            unwrap(self.model).load_state_dict(ck["model"])
            if self.ema is not None and ck.get("ema"):
                self.ema.load_state_dict(ck["ema"])
            self.optimizer.load_state_dict(ck["optimizer"])
            if ck.get("scaler"):
                self.scaler.load_state_dict(ck["scaler"])
            if self.semi is not None:
                self.semi.load_state_dict(ck.get("teacher"), self.model)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise ModelFileError(f"weights/optimizer do not fit this run ({type(e).__name__}: {first})",
                                 path=path) from None
        ipe = ck.get("scheduler", {}).get("iters_per_epoch", self.ipe)
        if ipe != self.ipe:
            log.warn(f"{path} had {ipe} iterations/epoch, now {self.ipe} (batch or world size changed)")
        self.start_epoch = int(ck["epoch"]) + 1
        self.best_ap, self.best_epoch = float(ck.get("best_ap", -1.0)), int(ck.get("best_epoch", -1))
        self.last_metrics = ck.get("metrics")
        self.best_metrics = ck.get("best_metrics") if isinstance(ck.get("best_metrics"), dict) else None
        self._rng = ck["rng"]  # restored last, after setup has drawn whatever it draws
        echo(f"resumed from {path} at epoch {self.start_epoch + 1}/{self.cfg.train.epochs}")

    # --- loop --------------------------------------------------------------------------------
    def run(self, on_epoch_end: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
        cfg, t = self.cfg, self.cfg.train
        if dist.is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            for f in remove_stale_temps(self.out, ("last.pt", "best.pt", "config.yaml", "metrics.json")):
                echo(f"removed {f}, left by an interrupted checkpoint write")
            from flowdet.detect import train_pseudo

            added = train_pseudo.describe(self.train_set.info["pseudo"]) if cfg.data.pseudo else []
            save_config(cfg, self.out / "config.yaml", added)  # what --pseudo added: # lines at its end
        if getattr(self, "_rng", None) is not None:
            set_rng_state(self._rng)
        from flowdet.detect.recipes import describe

        echo(f"{self.origin}: {describe(cfg)}")
        echo(f"training {cfg.model.size} at {self.hw[1]}x{self.hw[0]} on {len(self.dataset)} images, {len(self.names)} class(es), "
             f"{t.epochs} epochs × {self.ipe} it (warm-up {t.warmup_epochs:g}, no-aug {cfg.augment.no_aug_epochs}), "
             f"batch {t.batch} ({self.world} proc), lr {self.base_lr:.4g}, "
             f"device {self.device}{', amp' if self.amp else ''} → {self.out}")
        if self.semi is not None:
            echo(self.semi.describe())
        if note := self.dataset.copy_paste_note():
            echo(note)
        for epoch in range(self.start_epoch, t.epochs):
            t0 = time.perf_counter()
            row = self.train_epoch(epoch)
            evaluate_now = self.val_set is not None and ((epoch + 1) % t.eval_interval == 0 or epoch == t.epochs - 1)
            if evaluate_now and dist.is_main():
                stats = self.evaluate()
                row.update({"AP": stats["AP"], "AP50": stats["AP50"], "APs": stats["APs"]})
                if stats["AP"] > self.best_ap:
                    self.best_ap, self.best_epoch, self.best_metrics = float(stats["AP"]), epoch, stats
            self.epoch_s.append(time.perf_counter() - t0)
            say_epoch(row, t.epochs, self._eta(epoch), self._semi_text)
            if dist.is_main():
                self.log.append(row)
                # Plotting costs ~1 s of CPU (results.png ~0.9 s, loss.png ~0.1 s; measured 2026-12-07): every
                # epoch only when an epoch takes over 30 s (≤ 3 % of it), else with each eval and at the end.
                if evaluate_now or epoch == t.epochs - 1 or row["time_s"] > 30:
                    plot_curves(self.log, self.out, semi=self.semi is not None)
                ck = self.state(epoch)
                save_checkpoint(ck, self.out / "last.pt")
                if evaluate_now and self.best_epoch == epoch:
                    save_checkpoint(inference_checkpoint(ck), self.out / "best.pt")
            dist.barrier()
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
        return self.finish()

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        from tqdm import tqdm

        cfg, t = self.cfg, self.cfg.train
        model = self.model
        model.train()
        self.loader.batch_sampler.set_epoch(epoch)
        use_l1 = epoch >= t.epochs - cfg.augment.no_aug_epochs
        sums = torch.zeros(len(SUM_KEYS), dtype=torch.float64)
        buckets = torch.zeros(2, len(BUCKET_NAMES), dtype=torch.float64)  # boxes, positives per size bucket
        teacher_start = self.ema.ema if self.ema is not None else model
        unlabeled = self.semi.start_epoch(epoch, teacher_start) if self.semi is not None else None
        bar = tqdm(self.loader, total=self.ipe, desc=f"epoch {epoch + 1}/{t.epochs}", leave=False,
                   # None: tqdm shows the bar on a terminal only; `train > log` gets IterationLines instead
                   disable=None if (t.progress and dist.is_main()) else True, dynamic_ncols=True, mininterval=1.0)
        lines = IterationLines(epoch, t.epochs, self.ipe, t.log_every_s,
                               enabled=bool(bar.disable) and t.progress and dist.is_main(),
                               remaining_after_epoch_s=self._eta(epoch) if self.epoch_s else None)
        start = time.perf_counter()
        lr = self.schedule(epoch * self.ipe)
        unreadable = 0
        for i, (imgs, targets, info) in enumerate(bar):
            lr = self.schedule(epoch * self.ipe + i)
            set_lr(self.optimizer, lr)
            out = self._step(imgs, targets, unlabeled, use_l1, f"epoch {epoch + 1} iteration {i}")
            vals = [float(out[k]) for k in LOSS_KEYS] + [float(out["total"].detach()), out["num_fg"], out["num_miss"],
                                                         info["dropped_tiny"], info["dropped_out"], imgs.shape[0]]
            sums += torch.tensor(vals, dtype=torch.float64)
            buckets += torch.stack([out["bucket_gt"], out["bucket_fg"]])
            unreadable += int(info.get("unreadable", 0))
            n = i + 1
            ips = sums[-1].item() * self.world / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"loss {sums[4] / n:.3f} iou {sums[0] / n:.3f} obj {sums[1] / n:.3f} "
                                f"miss {sums[6] / max(sums[5], 1):.2f} {ips:.1f} img/s", refresh=False)
            lines.step(n, sums[4].item() / n)
        bar.close()
        row = epoch_row(epoch, lr, sums, buckets, time.perf_counter() - start, self.ipe, self.device, unreadable)
        self._semi_text = ""
        if self.semi is not None:
            semi_row, self._semi_text = self.semi.summarize(epoch, self.ipe)
            row.update(semi_row)
        return row  # said by run() once the epoch's evaluation (if any) is in

    def _step(self, imgs: torch.Tensor, targets: list[torch.Tensor], unlabeled: Iterator | None, use_l1: bool,
              where: str) -> dict[str, Any]:
        """One optimizer step on a labeled batch (after the burn-in with a strong unlabeled view in the same
        forward: one BN batch, one DDP pass); the supervised loss's outputs."""
        model, opt = self.model, self.optimizer
        imgs = imgs.to(self.device, non_blocking=True)
        if self.channels_last:
            imgs = imgs.contiguous(memory_format=torch.channels_last)
        targets = [x.to(self.device, non_blocking=True) for x in targets]
        n_lab = imgs.shape[0]
        if unlabeled is not None:
            weak, strong = self.semi.prepare(next(unlabeled))
            imgs = torch.cat([imgs, strong])
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            levels = model(imgs)
        out = self.loss_fn([x[:n_lab] for x in levels], targets, use_l1=use_l1)
        loss = out["total"]
        if unlabeled is not None:
            loss = loss + self.semi.weighted_loss([x[n_lab:] for x in levels], weak)
        if not self.amp and not torch.isfinite(loss):
            raise FlowdetError(f"loss is {loss.item()} at {where}; lower train.lr or set train.grad_clip")
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.grad_clip > 0:
            self.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(model)
        if unlabeled is not None:
            self.semi.update(model)
        return out

    def _eta(self, epoch: int) -> float:
        """Seconds left after ``epoch``: the mean epoch time so far (evaluations included) × epochs left."""
        if not self.epoch_s:
            return float("nan")
        return sum(self.epoch_s) / len(self.epoch_s) * (self.cfg.train.epochs - epoch - 1)

    def eval_model(self) -> nn.Module:
        """The weights evaluated and kept as best.pt: the teacher once it exists (flowdet.detect.semi), else the EMA."""
        if self.semi is not None and self.semi.teacher is not None:
            return self.semi.teacher.ema
        return self.ema.ema if self.ema is not None else unwrap(self.model)

    def evaluate(self) -> dict[str, Any]:
        from flowdet.detect.evaluate import evaluate
        from flowdet.detect.torch_predictor import TorchPredictor
        from flowdet.metrics.coco_eval import format_table

        e = self.cfg.eval
        pred = TorchPredictor.from_model(self.eval_model(), self.names, self.cat_ids, self.hw,
                                         str(self.device))
        stats = evaluate(pred, self.val_set, batch=e.batch, conf=e.conf, iou=e.iou, progress=False, verbose=False)
        self.last_metrics = stats
        if dist.is_main():
            log.debug(format_table(stats))  # -v: both COCO layouts at every evaluation
        if stats.get("images_unreadable"):
            log.warn(f"{stats['images_unreadable']} validation image(s) could not be read and were not scored")
        return stats

    def finish(self) -> dict[str, Any]:
        from flowdet.utils import atomic_write_json

        last, best = self.out / "last.pt", self.out / "best.pt"
        if dist.is_main():
            if (self.val_set is None or self.best_epoch < 0) and last.exists():
                echo("no validation set (data.val): best.pt is the last epoch" if self.val_set is None else
                     "no epoch was scored (AP -1: nothing to score in the validation set): best.pt is the last epoch")
                save_checkpoint(inference_checkpoint(load_checkpoint(last)), best)
            if self.last_metrics is not None:
                # epochs 1-based, as the console, metrics.csv and results.png number them
                atomic_write_json(self.out / "metrics.json", {
                    "metrics": self.last_metrics, "best_ap": self.best_ap, "best_epoch": self.best_epoch + 1,
                    "epochs_numbered_from": 1, "best_metrics": self.best_metrics}, indent=2)
        dist.barrier()
        summary = {"run_dir": str(self.out), "last": str(last), "best": str(best) if best.exists() else None,
                   "best_ap": self.best_ap, "best_epoch": self.best_epoch, "epochs": self.cfg.train.epochs,
                   "metrics": self.last_metrics, "metrics_csv": str(self.out / "metrics.csv"),
                   "loss_png": str(self.out / "loss.png"), "results_png": str(self.out / "results.png"),
                   "backbone": self.backbone_report}
        if self.best_metrics is not None and dist.is_main():
            from flowdet.metrics.coco_eval import format_table

            log.debug(format_table(self.best_metrics))
            log.result(short_table(self.best_metrics, self.best_epoch + 1))
        return summary
