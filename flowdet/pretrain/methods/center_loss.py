"""Center-loss pretraining: fg/bg patch classification from a labelled COCO set.

Object-centred patches (scale jitter 0.8–1.2) against patches that touch no box; the embedding is
the reference study's (backbone → dark5 → ``EmbedHead``), classified by a linear layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flowdet import log
from flowdet.errors import DataError
from flowdet.mine.frames import FrameStore
from flowdet.pretrain.config import MethodConfig, PretrainConfig
from flowdet.pretrain.crops import CenterPatchSampler
from flowdet.pretrain.datasets import BoxPatchDataset
from flowdet.pretrain.heads import EmbedHead, to_input
from flowdet.pretrain.losses.center import CenterLoss
from flowdet.pretrain.registry import register_method


def labelled_patches(cfg: PretrainConfig) -> tuple[BoxPatchDataset, BoxPatchDataset, dict[str, Any]]:
    """(train, held-out, info) patch sets of ``data.ann``, split by image (the study split by patch)."""
    m, d, seed = cfg.method, cfg.data, cfg.train.seed
    from flowdet.data.formats import load_dataset

    coco = load_dataset(d.ann, d.images or None, check_images=False)
    recs = [r for r in coco.records if r.width > 0 and r.height > 0]
    if len(recs) < 2:
        raise DataError(f"{d.ann}: center-loss needs at least 2 images (train + held-out)")
    # split BY IMAGE: no image contributes patches to both sides (the study split by patch)
    order = np.random.default_rng(seed).permutation(len(recs))
    n_val = min(len(recs) - 1, max(1, round(m.val_fraction * len(recs))))
    val_ids, train_ids = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())

    def rel(r) -> np.ndarray:
        keep = ~r.ignore if len(r.ignore) else np.ones(len(r.boxes), bool)
        return (r.boxes[keep] / np.array([r.width, r.height, r.width, r.height], np.float32)).astype(np.float32)

    def subset(ids: list[int], aug: bool, fixed: bool) -> BoxPatchDataset:
        store = FrameStore([recs[i] for i in ids], d.frame_size, d.cache)
        sampler = CenterPatchSampler(m, cfg.aug if aug else None)
        return BoxPatchDataset(store, [rel(recs[i]) for i in ids], sampler, seed + (7919 if fixed else 0), fixed,
                               1 if fixed else d.samples_per_frame)

    def n_boxes(ids: list[int]) -> int:
        return sum(len(rel(recs[i])) for i in ids)

    if n_boxes(train_ids) == 0:
        raise DataError(f"no (non-ignore) boxes in the {len(train_ids)} training images: center-loss learns "
                        "object vs background patches and needs labelled boxes", path=d.ann)
    if n_boxes(val_ids) == 0:
        log.warn(f"{d.ann}: the {len(val_ids)} held-out image(s) have no boxes; their accuracy "
                 "measures background patches only")
    info = {"images_train": len(train_ids), "images_val": len(val_ids),
            "val_image_ids": [recs[i].image_id for i in val_ids]}
    return subset(train_ids, True, False), subset(val_ids, False, True), info


@register_method("center-loss", inputs="ann", data=labelled_patches)
class CenterLossClassifier(nn.Module):
    """backbone + ``EmbedHead`` + linear fg/bg classifier; loss = CE + λ·``CenterLoss`` on the embedding.

    Batch: {"patches": uint8 [B, Q, S, S, 3], "labels": [B, Q] (1 fg, 0 bg), "valid": [B, Q] bool}."""

    def __init__(self, backbone: nn.Module, cfg: MethodConfig):
        super().__init__()
        if cfg.center_weight < 0:
            raise ValueError(f"center_weight must be ≥ 0, got {cfg.center_weight}")
        self.backbone = backbone
        self.head = EmbedHead(backbone.out_channels[-1], cfg.head_channels, cfg.embed_channels, cfg.embed_pool)
        self.classifier = nn.Linear(self.head.dim, 2)
        self.center = CenterLoss(2, self.head.dim, cfg.center_alpha)
        self.center_weight = cfg.center_weight

    def logits_and_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.head(self.backbone(x)["dark5"])
        return self.classifier(emb), emb

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        valid = batch["valid"].reshape(-1)
        labels = batch["labels"].reshape(-1)[valid]
        logits, emb = self.logits_and_embedding(to_input(batch["patches"]))
        logits, emb = logits[valid], emb[valid]  # after the backbone: BN sees a fixed-size batch
        ce = F.cross_entropy(logits.float(), labels)
        center = self.center(emb, labels)
        with torch.no_grad():
            acc = (logits.argmax(1) == labels).float().mean()
        return {"loss": ce + self.center_weight * center, "ce": ce.detach(), "center": center.detach(), "acc": acc}

    @torch.no_grad()
    def count_correct(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int, int]:
        """(fg correct, fg total, bg correct, bg total) on the valid patches (eval mode expected)."""
        valid = batch["valid"].reshape(-1)
        labels = batch["labels"].reshape(-1)[valid]
        logits, _ = self.logits_and_embedding(to_input(batch["patches"]))
        pred = logits[valid].argmax(1)
        fg, bg = labels == 1, labels == 0
        return (int((pred[fg] == 1).sum()), int(fg.sum()), int((pred[bg] == 0).sum()), int(bg.sum()))
