"""The unlabeled-image loss of teacher–student training: dense soft targets from the teacher, no threshold.

References:
    Zhou et al., "Dense Teacher: Dense Pseudo-Labels for Semi-supervised Object Detection", ECCV 2022,
    https://arxiv.org/abs/2207.02541 — the teacher's dense score map is the target (no box threshold,
    no NMS), with "region selection": the top-k% anchors by teacher score get the box and class terms.
    Liu et al., "Unbiased Teacher for Semi-Supervised Object Detection", ICLR 2021,
    https://arxiv.org/abs/2102.09480 — EMA teacher on a weak view, student on a strong view, burn-in.
    Why no threshold: one class and a fixed score threshold give no pseudo-box early on, and the
    unlabeled loss is silently zero (microsoft/SoftTeacher #163).

For an unlabeled batch of B images with N anchors each, the student's raw levels s (strong view) and
the teacher's t (weak view, the same geometry, so anchor a of both looks at the same pixels):

    y_obj = σ(t_obj),  y_cls = σ(t_cls),  q = y_obj · max_c y_cls            (teacher score, [B, N])
    P     = per image, the k = max(1, ⌈topk · N⌉) anchors with the largest q  (n = B · k)

    L = obj_weight · Σ_{all ∖ I} KL(y_obj ‖ σ(s_obj)) / n
      + cls_weight · Σ_P Σ_c KL(y_cls ‖ σ(s_cls)) / n
      + reg_weight · Σ_P q · L_box(b̂_s, b̂_t) / n

with KL(y ‖ p) = y·log(y/p) + (1 − y)·log((1 − y)/(1 − p)), the Bernoulli KL divergence: BCE(p, y)
minus the entropy of the soft target y, so its gradient is BCE's (p − y per logit) and it is 0
exactly when student and teacher agree. L_box is the IoU-family loss of the supervised term
(flowdet.ops.iou.IoULoss, ``iou_loss``) between the decoded student and teacher boxes, weighted by
the teacher's score and divided by n, not by Σ q: a teacher unsure everywhere (early, or on frames
without objects) then asks for little box regression, where Σ q would scale its noise up to a full
loss (measured: box 0.76 with mean top-k score < 0.001 right after a too-short burn-in). The weights
and the normaliser n (a count of "positives", as YOLOXLoss divides by its SimOTA positives) keep
the scale of the supervised loss. The teacher is never differentiated: its levels are detached.

I, the objectness ignore band (``obj_ignore=(low, high)``, off by default: I = ∅): the anchors whose
teacher score q lies in [low, high) get no objectness term, as ignore regions in the supervised loss
and the uncertain boxes of offline pseudo-labels (``--pseudo``). Why: with I = ∅ the objects the teacher
is unsure of are taught as background on the very frames being scored; the normaliser stays n.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.models.head import decode_boxes, flatten_levels, make_grids
from flowdet.ops.iou import IOU_KINDS, IoULoss


def bernoulli_kl(student_logit: torch.Tensor, teacher_logit: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(σ(t) ‖ σ(s)) from logits (log-sigmoid form: finite for any logit, 0 when s == t)."""
    y = teacher_logit.sigmoid()
    return (y * (F.logsigmoid(teacher_logit) - F.logsigmoid(student_logit))
            + (1 - y) * (F.logsigmoid(-teacher_logit) - F.logsigmoid(-student_logit)))


class DenseTeacherLoss(nn.Module):
    """Unlabeled loss between the student's and the teacher's raw head outputs (see the module docstring).

    Attributes:
        num_classes: C (raw levels have 5 + C channels).
        strides: Stride of each level, in the order of the head's outputs.
        topk: Share of anchors per image that get the class and box terms (Dense Teacher: 0.01).
        iou_loss: Box term between student and teacher boxes: "iou", "giou" or "ciou".
        obj_weight, cls_weight, reg_weight: Term weights (those of YOLOXLoss: 1, 1, 5).
        obj_ignore: (low, high): teacher scores in [low, high) get no objectness term; None = off.

    Examples:
        >>> loss_fn = DenseTeacherLoss(1, model.strides, topk=0.01)
        >>> with torch.no_grad():
        ...     t = teacher(weak)
        >>> out = loss_fn(student(strong), t)
        >>> out["total"].backward()
    """

    def __init__(self, num_classes: int, strides: tuple[int, ...] = (8, 16, 32), topk: float = 0.01,
                 iou_loss: str = "ciou", obj_weight: float = 1.0, cls_weight: float = 1.0, reg_weight: float = 5.0,
                 obj_ignore: tuple[float, float] | None = None):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0 < topk <= 1:
            raise ValueError(f"topk must be in (0, 1], got {topk}")
        if iou_loss not in IOU_KINDS:
            raise ValueError(f"iou_loss must be one of {IOU_KINDS}, got {iou_loss!r}")
        for name, w in (("obj_weight", obj_weight), ("cls_weight", cls_weight), ("reg_weight", reg_weight)):
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {w}")
        if obj_ignore is not None and not 0 <= obj_ignore[0] < obj_ignore[1] <= 1:
            raise ValueError(f"obj_ignore must be (low, high) with 0 <= low < high <= 1, got {obj_ignore}")
        self.obj_ignore = obj_ignore
        self.num_classes, self.strides, self.topk = num_classes, tuple(int(s) for s in strides), topk
        self.obj_weight, self.cls_weight, self.reg_weight = obj_weight, cls_weight, reg_weight
        self.box_loss = IoULoss(iou_loss, reduction="none", fmt="cxcywh")

    def forward(self, student: list[torch.Tensor], teacher: list[torch.Tensor]) -> dict[str, Any]:
        """Loss of one unlabeled batch.

        Args:
            student: Raw levels of the student on the strong view, each [B, 5 + C, H_l, W_l].
            teacher: Raw levels of the teacher on the weak view, the same shapes (detached here).

        Returns:
            "total": scalar fp32 tensor (weighted sum, differentiable in ``student`` only);
            "obj", "cls", "box": detached unweighted terms; "num_topk": n, the anchors in P;
            "topk_score": detached mean teacher score q over P; "obj_ignored": anchors in I (0 when off).
        """
        if len(student) != len(self.strides) or len(teacher) != len(student):
            raise ValueError(f"got {len(student)} student / {len(teacher)} teacher levels for strides {self.strides}")
        for s, t in zip(student, teacher):
            if s.shape != t.shape or s.ndim != 4 or s.shape[1] != 5 + self.num_classes:
                raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} levels must both be "
                                 f"[B, {5 + self.num_classes}, H, W]")
        with torch.autocast(device_type=student[0].device.type, enabled=False):
            return self._loss(student, [t.detach() for t in teacher])

    def _loss(self, student: list[torch.Tensor], teacher: list[torch.Tensor]) -> dict[str, Any]:
        s, t = flatten_levels(student).float(), flatten_levels(teacher).float()  # [B, N, 5 + C]
        batch, n_anchors, _ = s.shape
        grids, strides = make_grids(student, self.strides)
        with torch.no_grad():
            score = t[..., 4].sigmoid() * t[..., 5:].sigmoid().amax(-1)  # [B, N]
            k = min(n_anchors, max(1, math.ceil(self.topk * n_anchors)))
            top_score, top_idx = score.topk(k, dim=1)  # [B, k]
        n = float(batch * k)

        kl_obj = bernoulli_kl(s[..., 4], t[..., 4])
        ignored = 0
        if self.obj_ignore is not None:  # off: the sum below is today's, term for term
            low, high = self.obj_ignore
            band = (score >= low) & (score < high)
            kl_obj = kl_obj.masked_fill(band, 0.0)
            ignored = int(band.sum())
        loss_obj = kl_obj.sum() / n

        def pick(x: torch.Tensor) -> torch.Tensor:  # [B, N, D] → [B·k, D] at the top-k anchors
            return x.gather(1, top_idx[..., None].expand(-1, -1, x.shape[-1])).reshape(-1, x.shape[-1])

        loss_cls = bernoulli_kl(pick(s[..., 5:]), pick(t[..., 5:])).sum() / n
        s_box = pick(decode_boxes(s[..., :4], grids, strides))
        with torch.no_grad():
            t_box = pick(decode_boxes(t[..., :4], grids, strides))
        w = top_score.reshape(-1)
        loss_box = (w * self.box_loss(s_box, t_box)).sum() / n
        total = self.obj_weight * loss_obj + self.cls_weight * loss_cls + self.reg_weight * loss_box
        return {"total": total, "obj": loss_obj.detach(), "cls": loss_cls.detach(), "box": loss_box.detach(),
                "num_topk": int(n), "topk_score": top_score.mean().detach(),
                "obj_ignored": ignored}

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, strides={self.strides}, topk={self.topk}, "
                f"weights(obj, cls, reg)=({self.obj_weight}, {self.cls_weight}, {self.reg_weight}), "
                f"obj_ignore={self.obj_ignore}")
