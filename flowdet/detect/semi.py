"""Teacher–student training on unlabeled frames (``flowdet train --unlabeled``), Dense-Teacher style.

The trainer's labeled batch and an unlabeled batch (``semi.ratio`` unlabeled images per labeled one)
go through the student in one forward pass (one set of BatchNorm statistics, one DDP forward); the
teacher, an EMA of the student (``semi.teacher_decay``) started from the training EMA at the end of the
burn-in, sees the weak view; the unlabeled loss (flowdet.detect.semi_loss) is added with ``semi.weight``. Before the burn-in
ends training is supervised only and no unlabeled frame is read. With ``semi.teacher_gate`` > 0 the burn-in
ends only when the would-be teacher is ready: on a fixed probe of unlabeled frames it must find
pseudo-boxes/img ≥ gate × the labeled set's boxes/img, else supervised training goes on one more epoch (up
to half the epochs) — against the SoftTeacher #163 failure in its dense form (one seed's teacher on
Grogol's new camera found 0.0–0.2 pseudo-boxes/img after the fixed burn-in). Off by default: the one gated
run measured so far scored lower at epoch 10 than the ungated ones (docs/benchmarks.md).

Sources (``semi.unlabeled``) are resolved by flowdet.mine.unlabeled (torch-free, shared with the
efficiency grid): image folders, mined-frame folders / manifest.jsonl, .txt lists, COCO json images,
single images, and videos mined once at ``semi.video_fps`` into ``<out>/unlabeled_frames``. Checked before training starts: a source
without images or videos, a video that does not decode → one line, exit 2. Frames that are images
of ``semi.exclude`` → refused (content hash, flowdet.mine.leakage); frames that are ``--val``
images → one line saying the val score is transductive (the new-camera protocol does it on purpose).

Evaluation and ``best.pt`` use the teacher once it exists (Dense Teacher and Unbiased Teacher report
the teacher: the slow average of the student is the better detector); checkpoints store it under
"teacher" and inference (flowdet.detect.io) loads it in preference to the EMA.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flowdet import log
from flowdet.data.records import CocoDataset
from flowdet.detect.config import DetectConfig, SemiSection, resolve_semi
from flowdet.detect.folded import FoldedCopy
from flowdet.detect.semi_data import UnlabeledBatchSampler, UnlabeledDataset, build_unlabeled_loader
from flowdet.detect.semi_loss import DenseTeacherLoss
from flowdet.engine import dist
from flowdet.engine.checkpoint import unwrap
from flowdet.engine.ema import ModelEMA
from flowdet.mine.unlabeled import check_leaks, resolve_unlabeled

# 2 GiB: ~1,700 frames at 832×480 (the new-camera protocol's 130 val frames take 156 MB)
UNLABELED_CACHE_BYTES = 2 << 30
SEMI_KEYS = ("unl", "unl_obj", "unl_cls", "unl_box", "pseudo_per_img", "topk_score", "obj_ignored_per_img")
# What each step adds to the epoch's sums (step_sums), in order: N_LOSSES losses (averaged over steps), then counts.
SUM_FIELDS = ("unl", "obj", "cls", "box", "topk_score", "pseudo", "images", "obj_ignored")
N_LOSSES = 5


class SemiTeacher:
    """The unlabeled side of a training run: frames, views, teacher, loss, and their per-epoch numbers."""

    def __init__(self, cfg: DetectConfig, frames: list[Path], hw: tuple[int, int], num_classes: int,
                 strides: tuple[int, ...], iters_per_epoch: int, per_rank: int, device: torch.device,
                 channels_last: bool, amp: bool, labeled_per_img: float = 0.0):
        s, t = cfg.semi, cfg.train
        self.cfg, self.device, self.channels_last, self.amp = s, device, channels_last, amp
        self.burn_in, self.decay = resolve_semi(cfg, iters_per_epoch)
        self.last_burn_in = max(self.burn_in, t.epochs // 2)  # the gate extends the burn-in up to here
        self.gate_boxes = s.teacher_gate * labeled_per_img  # pseudo-boxes/img the would-be teacher must find
        self.hw = hw
        # data.cache: letterboxed frames cached up to UNLABELED_CACHE_BYTES (hours of mined video would not fit)
        self.dataset = UnlabeledDataset(frames, hw, s, cfg.augment.hsv_gains, cfg.augment.flip_prob, t.seed,
                                        cache_bytes=UNLABELED_CACHE_BYTES if cfg.data.cache else 0)
        self.per_rank = per_rank * s.ratio
        sampler = UnlabeledBatchSampler(len(self.dataset), self.per_rank, iters_per_epoch, t.seed, hw,
                                        dist.rank(), dist.world_size(), cfg.augment.multiscale,
                                        cfg.augment.multiscale_every)
        self.loader = build_unlabeled_loader(self.dataset, sampler, t.workers, t.seed)
        self.loss_fn = DenseTeacherLoss(num_classes, strides, s.topk, t.iou_loss, obj_ignore=obj_ignore_band(s))
        self.teacher: ModelEMA | None = None
        self._folded: FoldedCopy | None = None  # the teacher's BN-folded copy that runs its forward passes
        self._folded_of: ModelEMA | None = None  # the teacher it was made from (a resume makes a new one)
        self._stale = False

    def describe(self) -> str:
        s = self.cfg
        return (f"unlabeled: {len(self.dataset)} frames, {self.per_rank} per batch and process (ratio {s.ratio}), "
                f"burn-in {self.burn_in} epoch(s), then an EMA teacher (decay {self.decay:.4g}) on the weak view, "
                f"loss weight {s.weight:g}, top {s.topk:.2%} anchors for class/box")

    def active(self, epoch: int) -> bool:
        return epoch >= self.burn_in

    def ready(self, epoch: int, candidate: nn.Module) -> bool:
        """Whether the unlabeled loss runs this epoch. At the first epoch after the burn-in (while no teacher
        exists) ``candidate`` — the model the teacher would start from — is probed; too few pseudo-boxes
        extend the burn-in by one epoch (said in one line), up to ``last_burn_in``."""
        if not self.active(epoch):
            return False
        if self.teacher is not None or self.gate_boxes <= 0:
            return True
        # every rank probes the same frames; the mean keeps all ranks on one decision (a split one deadlocks DDP)
        found = float(dist.all_reduce_mean(torch.tensor(self.probe(candidate), device=self.device)))
        if found >= self.gate_boxes:
            log.info(f"unlabeled: the teacher starts at epoch {epoch + 1}: {found:.1f} pseudo-boxes/img on the probe "
                     f"frames (gate {self.gate_boxes:.1f} = semi.teacher_gate × labeled boxes/img)")
            return True
        if epoch >= self.last_burn_in:
            log.warn(f"unlabeled: the teacher starts at epoch {epoch + 1} although it finds only {found:.1f} "
                     f"pseudo-boxes/img (< gate {self.gate_boxes:.1f}) — the burn-in cannot go past half the epochs; "
                     "the unlabeled frames may teach little")
            return True
        self.burn_in = epoch + 1
        log.info(f"unlabeled: burn-in extended to {self.burn_in} epochs: the would-be teacher finds {found:.1f} "
                 f"pseudo-boxes/img on the probe frames (< gate {self.gate_boxes:.1f})")
        return False

    @torch.no_grad()
    def probe(self, model: nn.Module, frames: int = 16, batch: int = 4) -> float:
        """Pseudo-boxes/img ``model`` finds on a fixed spread of up to ``frames`` unlabeled weak views."""
        from flowdet.detect.semi_data import collate_views

        model = unwrap(model)
        was_training = model.training
        model.eval()
        h, w = self.hw
        idx = np.unique(np.linspace(0, len(self.dataset) - 1, min(frames, len(self.dataset))).round().astype(int))
        total = 0
        for i in range(0, len(idx), batch):
            weak, _ = collate_views([self.dataset[(int(j), 0, h, w)] for j in idx[i:i + batch]])
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                levels = model(self._to(weak))
            total += pseudo_boxes(model, levels, self.cfg.pseudo_conf)
        model.train(was_training)
        return total / max(len(idx), 1)

    def batches(self, epoch: int, start_from: nn.Module):
        """The epoch's (weak, strong) batches; the first time, makes the teacher: a copy of ``start_from``
        (the training EMA: a smoother start than the last step's student)."""
        if self.teacher is None:
            self.teacher = ModelEMA(start_from, self.decay, tau=0)
        self.loader.batch_sampler.set_epoch(epoch)
        return iter(self.loader)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        weak, strong = batch
        return self._to(weak), self._to(strong)

    def loss(self, student_levels: list[torch.Tensor], weak: torch.Tensor) -> dict[str, Any]:
        """The unlabeled loss of the student's levels on the strong view against the teacher on ``weak``,
        plus "pseudo": teacher detections scoring ≥ semi.pseudo_conf after NMS, summed over the batch."""
        t_levels = self.teacher_forward(weak)
        out = self.loss_fn(student_levels, t_levels)
        out["pseudo"] = self.count_pseudo(t_levels)
        return out

    def teacher_forward(self, weak: torch.Tensor) -> list[torch.Tensor]:
        """The teacher's raw levels on the weak view: its BN-folded copy (flowdet.detect.folded), refreshed
        after each teacher update, under inference mode — the teacher's function, ~10 % faster."""
        assert self.teacher is not None
        if self._folded is None or self._folded_of is not self.teacher:
            self._folded, self._folded_of = FoldedCopy(self.teacher.ema, self.channels_last), self.teacher
        elif self._stale:
            self._folded.refresh()
        self._stale = False
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            levels = self._folded.model(weak)
        return [x.clone() for x in levels]  # normal tensors: autograd may save them (the loss multiplies by them)

    def count_pseudo(self, t_levels: list[torch.Tensor]) -> int:
        """Teacher detections ≥ semi.pseudo_conf after NMS in ``t_levels`` (the progress line's pseudo-boxes)."""
        assert self.teacher is not None
        return pseudo_boxes(self.teacher.ema, t_levels, self.cfg.pseudo_conf)

    def update(self, student: nn.Module) -> None:
        if self.teacher is not None:
            self.teacher.update(student)
            self._stale = True

    def epoch_summary(self, epoch: int, sums: torch.Tensor, iters: int, device: torch.device) -> tuple[dict, str]:
        """(metrics.csv columns, text for the epoch line) from the epoch's sums (SUM_FIELDS); warns when the
        unlabeled loss is zero. Burn-in epochs: NaN columns."""
        if not self.active(epoch):
            return empty_row(), f"; unlabeled: burn-in {epoch + 1}/{self.burn_in}"
        if dist.world_size() > 1:  # losses: mean over ranks; counts: sums over ranks
            red = dist.all_reduce_mean(sums.to(device)).cpu()
            sums = torch.cat([red[:N_LOSSES], red[N_LOSSES:] * dist.world_size()])
        mean = sums[:N_LOSSES] / max(iters, 1)
        row = {"unl": mean[0].item(), "unl_obj": mean[1].item(), "unl_cls": mean[2].item(), "unl_box": mean[3].item(),
               "pseudo_per_img": sums[5].item() / max(sums[6].item(), 1.0), "topk_score": mean[4].item(),
               "obj_ignored_per_img": sums[7].item() / max(sums[6].item(), 1.0)}
        warning = zero_loss_warning(epoch, row, self.cfg.pseudo_conf)
        if warning and dist.is_main():
            log.warn(warning)
        text = (f"; unlabeled {row['unl']:.4f} (obj {row['unl_obj']:.3f} cls {row['unl_cls']:.3f} "
                f"box {row['unl_box']:.3f}) pseudo-boxes/img {row['pseudo_per_img']:.1f} "
                f"(teacher ≥ {self.cfg.pseudo_conf:g} after NMS), top-k teacher score {row['topk_score']:.3f}")
        if self.loss_fn.obj_ignore is not None:
            text += f", obj-ignored anchors/img {row['obj_ignored_per_img']:.0f}"
        return row, text

    def start_epoch(self, epoch: int, start_from: nn.Module) -> Iterator | None:
        """The epoch's unlabeled batches, or None while the burn-in lasts (:meth:`ready`); resets the
        sums :meth:`summarize` reports."""
        self.sums = torch.zeros(len(SUM_FIELDS), dtype=torch.float64)
        return self.batches(epoch, start_from) if self.ready(epoch, start_from) else None

    def weighted_loss(self, student_levels: list[torch.Tensor], weak: torch.Tensor) -> torch.Tensor:
        """``semi.weight`` × the unlabeled loss (:meth:`loss`), its parts added to the epoch's sums."""
        u = self.loss(student_levels, weak)
        self.sums += step_sums(u, weak.shape[0])
        return self.cfg.weight * u["total"]

    def summarize(self, epoch: int, iters: int) -> tuple[dict, str]:
        """:meth:`epoch_summary` of the sums since :meth:`start_epoch`."""
        return self.epoch_summary(epoch, self.sums, iters, self.device)

    def state_dict(self) -> dict[str, Any] | None:
        return self.teacher.state_dict() if self.teacher is not None else None

    def load_state_dict(self, state: dict[str, Any] | None, student: nn.Module) -> None:
        if state:
            self.teacher = ModelEMA(student, self.decay, tau=0)
            self.teacher.load_state_dict(state)


@torch.no_grad()
def pseudo_boxes(model: nn.Module, levels: list[torch.Tensor], conf: float, iou: float = 0.65) -> int:
    """Detections with score ≥ ``conf`` after per-class NMS in a batch of raw levels (the count only)."""
    from flowdet.core.nms import batched_nms

    boxes, scores = model.decode(levels)
    best, cls = scores.float().max(-1)
    total = 0
    for b in range(boxes.shape[0]):
        keep = best[b] >= conf
        if keep.any():
            bx = boxes[b][keep].float().cpu().numpy()
            total += len(batched_nms(bx, best[b][keep].cpu().numpy(), cls[b][keep].cpu().numpy(), iou))
    return total


def unlabeled_setup(cfg: DetectConfig, val_images: list[Path]) -> list[Path]:
    """Frames of ``semi.unlabeled`` with the checks above, agreed on by every DDP rank: rank 0 mines
    videos and checks for leaks (an error there ends the torchrun group), the others read the result."""
    s, out = cfg.semi, Path(cfg.out)
    if dist.is_main():
        frames = resolve_unlabeled(s.unlabeled, out, s.video_fps)
        check_leaks(frames, s.exclude, val_images, cfg.data.val or "VAL.json")
    dist.barrier()
    if not dist.is_main():
        frames = resolve_unlabeled(s.unlabeled, out, s.video_fps, mine_videos=False)
    return frames


def for_run(cfg: DetectConfig, train_set: CocoDataset, val_set: CocoDataset | None, hw: tuple[int, int],
            strides: tuple[int, ...], iters_per_epoch: int, per_rank: int, device: torch.device,
            channels_last: bool, amp: bool) -> SemiTeacher | None:
    """The unlabeled side of a training run when ``semi.unlabeled`` names frames, else None. Its frames
    are checked against the val images (:func:`unlabeled_setup`); the teacher gate compares with the
    labeled set's (non-ignore) boxes per image."""
    if not cfg.semi.unlabeled:
        return None
    val_images = [r.file for r in val_set.records if r.frame_index is None] if val_set else []
    records = train_set.records
    per_img = sum(int((~r.ignore).sum()) for r in records) / max(len(records), 1)
    return SemiTeacher(cfg, unlabeled_setup(cfg, val_images), hw, train_set.num_classes, strides, iters_per_epoch,
                       per_rank, device, channels_last, amp, labeled_per_img=per_img)


def step_sums(u: dict[str, Any], images: int) -> torch.Tensor:
    """One step's values of SUM_FIELDS from the unlabeled loss's dict (:meth:`SemiTeacher.loss`)."""
    return torch.tensor([float(u["total"].detach())] + [float(u[k]) for k in ("obj", "cls", "box", "topk_score")]
                        + [u["pseudo"], images, u["obj_ignored"]], dtype=torch.float64)


def obj_ignore_band(s: SemiSection) -> tuple[float, float] | None:
    """The teacher scores whose anchors get no dense objectness term: [obj_ignore_low, pseudo_conf); None = off."""
    return (s.obj_ignore_low, s.pseudo_conf) if s.obj_ignore_low > 0 else None


def empty_row() -> dict[str, float]:
    return {k: float("nan") for k in SEMI_KEYS}


def zero_loss_warning(epoch: int, row: dict[str, Any], conf: float) -> str | None:
    """The warning for an epoch whose unlabeled loss is zero (the unlabeled frames teach nothing:
    microsoft/SoftTeacher #163's failure) or whose teacher found no pseudo-box at all."""
    unl, pseudo = row.get("unl"), row.get("pseudo_per_img")
    if unl is None or not np.isfinite(unl):
        return None
    if unl <= 1e-8:
        return (f"epoch {epoch + 1}: the unlabeled loss is zero (pseudo-boxes/img {pseudo:.2f}): the teacher agrees "
                "with the student everywhere and the unlabeled frames teach nothing — check the strong view "
                "(semi.blur_prob / noise_std / cutout, augment.hsv_gains) and the supervised loss")
    if pseudo == 0:
        return (f"epoch {epoch + 1}: the teacher found no detection ≥ {conf:g} on the unlabeled frames: its dense "
                "targets are background only (a longer semi.burn_in_epochs lets it learn first)")
    return None
