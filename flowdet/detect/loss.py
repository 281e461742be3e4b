"""The YOLOX training loss: SimOTA positives, then objectness, class, box (IoU family) and L1 terms.

Reference: Ge et al., "YOLOX: Exceeding YOLO Series in 2021", https://arxiv.org/abs/2107.08430.
The box term is selectable (``iou_loss``); the reference FloW study replaced YOLOX's 1 − IoU² by
CIoU because SimOTA hands tiny objects positives whose predicted boxes miss the target, where an
IoU loss has no gradient (``miss_share`` measures how many positives are in that case).

Ignore regions (crowd / ignore / difficult boxes, pseudo-labels' uncertain boxes) come as target rows
of class ``IGNORE_CLASS`` (−1): an anchor whose centre lies inside one and that SimOTA did not make a
positive of a real box gets no objectness loss (YOLOv5 / mmdet "ignore"), instead of being taught
that the region is background. Without such rows the loss is computed exactly as before.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.core.defaults import IGNORE_CLASS, NWD_CONSTANT
from flowdet.detect.simota import simota_assign
from flowdet.engine.dist import all_reduce_mean
from flowdet.models.head import decode_boxes, flatten_levels, make_grids
from flowdet.ops.iou import IOU_KINDS, IoULoss, xyxy_to_cxcywh
from flowdet.ops.nwd import NWDLoss

_L1_LOG_EPS = 1e-8
# Ground-truth size buckets (√(w·h) in input px) for the positives-per-box report.
SIZE_BUCKETS = (8.0, 16.0, 32.0)
BUCKET_NAMES = ("lt8", "8to16", "16to32", "ge32")


class YOLOXLoss(nn.Module):
    """YOLOX loss with SimOTA assignment and IoU-aware class targets.

    With F the positives chosen by SimOTA over the batch and n = max(1, mean over DDP ranks of |F|):

        L = reg_weight · Σ_F L_box(p̂, g) / n                               (IoU family, see IoULoss)
          + obj_weight · Σ_{all but I} BCE(obj, 1[anchor ∈ F]) / n             (I: ignored anchors, see above)
          + cls_weight · Σ_F BCE(cls, onehot(c) · IoU(p̂, g)) / n          (IoU-aware, no grad in IoU)
          + l1_weight  · Σ_F |raw − t| / n                                   (only when use_l1)
          + nwd_weight · Σ_F (1 − NWD(p̂, g)) / n                              (only when nwd_weight > 0)

    where the L1 target t of a positive of stride s at grid cell (gx, gy) for a box (cx, cy, w, h)
    is (cx/s − gx, cy/s − gy, log(w/s + ε), log(h/s + ε)), i.e. the raw head output that decodes to
    the box. All terms are computed in fp32, outside autocast.

    Attributes:
        num_classes: Number of classes C (raw levels have 5 + C channels).
        strides: Stride of each level, in the order of the head's outputs.
        iou_loss: Box term: "iou" (1 − IoU², YOLOX), "giou" or "ciou" (1 − CIoU, the study's fix).
        obj_weight, cls_weight, reg_weight, l1_weight: Term weights (YOLOX: 1, 1, 5, 1).
        center_radius, topk, min_box_side, min_k, assign_cost, nwd_constant, small_box_below: SimOTA parameters
            (see flowdet.detect.simota).
        nwd_weight: Weight of the NWD box term (flowdet.ops.nwd); 0 = off.
        soft_obj: Objectness target of a positive = its IoU instead of 1.

    Raises:
        ValueError: On num_classes < 1, empty or non-positive strides, an unknown iou_loss, a
            negative or non-finite weight, center_radius <= 0 or topk < 1.

    Examples:
        >>> loss_fn = YOLOXLoss(num_classes=1, strides=model.strides, iou_loss="ciou")
        >>> out = loss_fn(model(images), targets, use_l1=False)
        >>> out["total"].backward()
    """

    def __init__(
        self,
        num_classes: int,
        strides: tuple[int, ...] = (8, 16, 32),
        iou_loss: str = "ciou",
        obj_weight: float = 1.0,
        cls_weight: float = 1.0,
        reg_weight: float = 5.0,
        l1_weight: float = 1.0,
        center_radius: float = 2.5,
        topk: int = 10,
        min_box_side: float = 0.0,
        min_k: int = 1,
        assign_cost: str = "iou",
        nwd_constant: float = NWD_CONSTANT,
        nwd_weight: float = 0.0,
        soft_obj: bool = False,
        small_box_below: float = 0.0,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        strides = tuple(int(s) for s in strides)
        if not strides or min(strides) < 1:
            raise ValueError(f"strides must be a non-empty tuple of positive ints, got {strides}")
        if iou_loss not in IOU_KINDS:
            raise ValueError(f"iou_loss must be one of {IOU_KINDS}, got {iou_loss!r}")
        weights = {"obj_weight": obj_weight, "cls_weight": cls_weight, "reg_weight": reg_weight, "l1_weight": l1_weight,
                   "nwd_weight": nwd_weight}
        for name, w in weights.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {w}")
        if not center_radius > 0 or topk < 1 or min_k < 1 or not min_box_side >= 0 or not small_box_below >= 0:
            raise ValueError(f"center_radius must be > 0, topk >= 1, min_k >= 1, min_box_side >= 0, small_box_below >= 0; "
                             f"got {center_radius}, {topk}, {min_k}, {min_box_side}, {small_box_below}")
        if assign_cost not in ("iou", "nwd"):
            raise ValueError(f"assign_cost must be 'iou' or 'nwd', got {assign_cost!r}")
        self.num_classes, self.strides, self.iou_loss = num_classes, strides, iou_loss
        self.obj_weight, self.cls_weight, self.reg_weight, self.l1_weight = obj_weight, cls_weight, reg_weight, l1_weight
        self.center_radius, self.topk = center_radius, topk
        self.min_box_side, self.min_k, self.assign_cost, self.nwd_weight = min_box_side, min_k, assign_cost, nwd_weight
        self.nwd_constant, self.soft_obj, self.small_box_below = nwd_constant, soft_obj, small_box_below
        self.box_loss = IoULoss(iou_loss, reduction="sum", fmt="cxcywh")
        self.nwd_loss = NWDLoss(nwd_constant, reduction="sum", fmt="cxcywh")

    def forward(self, levels: list[torch.Tensor], targets: list[torch.Tensor], use_l1: bool = False) -> dict[str, Any]:
        """Loss of one batch.

        Args:
            levels: Raw head outputs, one per stride, each [B, 5 + C, H_l, W_l]
                (dx, dy, log w, log h, obj, cls…), as returned by ``YOLOX.forward``.
            targets: One tensor per image, [M_i, 5] = (class index, x1, y1, x2, y2) in input pixels;
                M_i may be 0; class −1 (``IGNORE_CLASS``) marks an ignore region.
            use_l1: Add the L1 term on raw offsets (YOLOX turns it on for the last epochs).

        Returns:
            "total": scalar fp32 tensor to call backward on;
            "iou", "obj", "cls", "l1": detached scalar fp32 tensors, unweighted (each already / n);
            "num_fg": int, positives on this rank; "num_miss": int, positives whose predicted box
            has IoU 0 with its box; "miss_share": float, num_miss / num_fg (0.0 without positives);
            "bucket_gt", "bucket_fg": [4] float64 tensors, boxes and their positives per size bucket
            (√(w·h) < 8, 8–16, 16–32, ≥ 32 px; see SIZE_BUCKETS); "num_ignored": int, anchors left
            out of the objectness loss by ignore regions.
        """
        self._check_inputs(levels, targets)
        device = levels[0].device
        with torch.autocast(device_type=device.type, enabled=False):
            return self._loss(levels, targets, use_l1)

    def _check_inputs(self, levels: list[torch.Tensor], targets: list[torch.Tensor]) -> None:
        if len(levels) != len(self.strides):
            raise ValueError(f"got {len(levels)} levels for {len(self.strides)} strides {self.strides}")
        want = 5 + self.num_classes
        for x in levels:
            if x.ndim != 4 or x.shape[1] != want:
                raise ValueError(f"each level must be [B, {want}, H, W] for {self.num_classes} classes, got {tuple(x.shape)}")
        if len(targets) != levels[0].shape[0]:
            raise ValueError(f"got {len(targets)} target tensors for a batch of {levels[0].shape[0]}")
        for t in targets:
            if t.ndim != 2 or t.shape[1] != 5:
                raise ValueError(f"each target must be [M, 5] (class, x1, y1, x2, y2), got {tuple(t.shape)}")

    def _loss(self, levels: list[torch.Tensor], targets: list[torch.Tensor], use_l1: bool) -> dict[str, Any]:
        targets, ignores = split_ignore(targets)
        flat = flatten_levels(levels).float()  # [B, N, 5 + C]
        batch, n_anchors, _ = flat.shape
        grids, strides = make_grids(levels, self.strides)  # [N, 2], [N]
        raw_reg, obj_logit, cls_logit = flat[..., :4], flat[..., 4], flat[..., 5:]
        pred_boxes = decode_boxes(raw_reg, grids, strides)  # [B, N, 4] cxcywh px
        anchor_centers = (grids + 0.5) * strides[:, None]
        with torch.no_grad():
            joint_scores = obj_logit.sigmoid()[..., None] * cls_logit.sigmoid()  # [B, N, C]

        fg_masks, gt_boxes, gt_classes, fg_ious = [], [], [], []
        bucket_gt = torch.zeros(4, dtype=torch.float64, device=flat.device)
        bucket_fg = torch.zeros_like(bucket_gt)
        edges = torch.tensor(SIZE_BUCKETS, device=flat.device)
        for b in range(batch):  # SimOTA per image; everything after it is batched
            tgt = targets[b].to(device=flat.device, dtype=torch.float32)
            a = simota_assign(pred_boxes[b].detach(), joint_scores[b], anchor_centers, strides,
                              tgt[:, 1:5], tgt[:, 0].long(), self.center_radius, self.topk,
                              self.min_box_side, self.min_k, self.assign_cost, self.nwd_constant,
                              self.small_box_below)
            if tgt.shape[0]:
                side = ((tgt[:, 3] - tgt[:, 1]).clamp(min=0) * (tgt[:, 4] - tgt[:, 2]).clamp(min=0)).sqrt()
                bucket = torch.bucketize(side, edges, right=True)  # [M] in 0..3
                per_box = torch.bincount(a.matched_gt, minlength=tgt.shape[0]).double()
                bucket_gt += torch.bincount(bucket, minlength=4).double()
                bucket_fg.index_add_(0, bucket, per_box)
            fg_masks.append(a.fg_mask)
            gt_boxes.append(tgt[a.matched_gt, 1:5])
            gt_classes.append(a.matched_classes)
            fg_ious.append(a.matched_iou)  # IoU of the (detached) prediction with its box, [F_b]
        fg_mask = torch.stack(fg_masks)  # [B, N]
        fg_gt = xyxy_to_cxcywh(torch.cat(gt_boxes))  # [F, 4], in the order of fg_mask.nonzero()
        fg_cls = torch.cat(gt_classes)  # [F]
        num_fg = int(fg_gt.shape[0])
        norm = all_reduce_mean(torch.tensor(float(num_fg), device=flat.device)).clamp(min=1.0)

        fg_pred = pred_boxes[fg_mask]  # [F, 4]
        fg_iou = torch.cat(fg_ious)  # [F], no grad: a target, not a prediction
        cls_target = F.one_hot(fg_cls, self.num_classes).float() * fg_iou[:, None]

        loss_iou = self.box_loss(fg_pred, fg_gt) / norm
        obj_target = fg_mask.float()
        if self.soft_obj:  # IoU-aware objectness: a positive's target is its (detached) IoU
            obj_target = obj_target.masked_scatter(fg_mask, fg_iou.to(obj_target.dtype))
        obj_keep, num_ignored = None, 0  # None: every anchor counts (no ignore region in the batch)
        if ignores is not None:
            obj_keep = ~(ignored_anchors(anchor_centers, ignores) & ~fg_mask)
            num_ignored = int((~obj_keep).sum())
            obj_keep = obj_keep.float()
        loss_obj = F.binary_cross_entropy_with_logits(obj_logit, obj_target, weight=obj_keep, reduction="sum") / norm
        loss_cls = F.binary_cross_entropy_with_logits(cls_logit[fg_mask], cls_target, reduction="sum") / norm
        if use_l1:
            fg_stride = strides[None].expand(batch, -1)[fg_mask][:, None]  # [F, 1]
            fg_grid = grids[None].expand(batch, -1, -1)[fg_mask]  # [F, 2]
            l1_target = torch.cat([fg_gt[:, :2] / fg_stride - fg_grid,
                                   torch.log(fg_gt[:, 2:] / fg_stride + _L1_LOG_EPS)], dim=1)
            loss_l1 = F.l1_loss(raw_reg[fg_mask], l1_target, reduction="sum") / norm
        else:
            loss_l1 = flat.new_zeros(())

        total = (self.reg_weight * loss_iou + self.obj_weight * loss_obj + self.cls_weight * loss_cls
                 + (self.l1_weight * loss_l1 if use_l1 else 0.0))
        if self.nwd_weight > 0:
            total = total + self.nwd_weight * self.nwd_loss(fg_pred, fg_gt) / norm
        num_miss = int((fg_iou == 0).sum())
        return {
            "total": total,
            "iou": loss_iou.detach(), "obj": loss_obj.detach(), "cls": loss_cls.detach(), "l1": loss_l1.detach(),
            "num_fg": num_fg, "num_miss": num_miss, "miss_share": num_miss / num_fg if num_fg else 0.0,
            "bucket_gt": bucket_gt.cpu(), "bucket_fg": bucket_fg.cpu(), "num_ignored": num_ignored,
        }

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, strides={self.strides}, iou_loss={self.iou_loss!r}, "
                f"weights(obj, cls, reg, l1)=({self.obj_weight}, {self.cls_weight}, {self.reg_weight}, {self.l1_weight})")


def split_ignore(targets: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """(each image's label rows [M, 5], each image's ignore boxes [K, 4] xyxy — or None when no image
    of the batch has one, so a batch without ignore regions takes the loss's plain path)."""
    if not targets or not bool(torch.cat([t[:, 0] for t in targets]).eq(IGNORE_CLASS).any()):
        return targets, None
    ignore = [t[:, 0] == IGNORE_CLASS for t in targets]
    return [t[~m] for t, m in zip(targets, ignore)], [t[m, 1:5].float() for t, m in zip(targets, ignore)]


def ignored_anchors(centres: torch.Tensor, ignores: list[torch.Tensor]) -> torch.Tensor:
    """[B, N] bool: anchors whose centre ([N, 2] px) lies strictly inside one of their image's ignore
    boxes (``ignores``: [K_b, 4] xyxy per image; the same strict test as SimOTA's "in box")."""
    pad = torch.nn.utils.rnn.pad_sequence([b.to(centres) for b in ignores], batch_first=True)  # [B, K, 4]; a 0 box holds nothing
    x, y = centres[:, 0], centres[:, 1]
    inside = (x > pad[..., 0:1]) & (x < pad[..., 2:3]) & (y > pad[..., 1:2]) & (y < pad[..., 3:4])  # [B, K, N]
    return inside.any(1)
