"""Center-loss pretraining: fg/bg patch classification from a labelled COCO set.

Object-centred patches (scale jitter 0.8–1.2) against patches that touch no box; the embedding is
the reference study's (backbone → dark5 → ``EmbedHead``), classified by a linear layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.engine import dist
from flowdet.pretrain.config import MethodConfig
from flowdet.pretrain.heads import EmbedHead, to_input


class CenterLoss(nn.Module):
    """Center loss, Wen et al., "A Discriminative Feature Learning Approach for Deep Face
    Recognition", ECCV 2016:

        L_C = ½ · mean_i ‖x_i − c_{y_i}‖²

    The class centres are a buffer, not a parameter: in training mode each call also moves them by
    Wen's update rule (their eq. 4), with the batch gathered over DDP ranks:

        c_j ← c_j − α · Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)

    Shapes: features [N, D], labels [N] (int in [0, num_classes)) → scalar loss.
    """

    def __init__(self, num_classes: int, dim: int, alpha: float = 0.5):
        super().__init__()
        if num_classes < 1 or dim < 1:
            raise ValueError(f"num_classes and dim must be ≥ 1, got {num_classes}, {dim}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = features.float()
        loss = 0.5 * (x - self.centers[labels]).pow(2).sum(1).mean()
        if self.training:
            self._update(x.detach(), labels)
        return loss

    @torch.no_grad()
    def _update(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        k = self.centers.shape[0]
        onehot = F.one_hot(labels, k).float()  # [N, K]
        sums = onehot.t() @ x  # Σ x_i per class
        counts = onehot.sum(0)
        if dist.is_distributed():  # one update from the global batch keeps ranks identical
            import torch.distributed as tdist

            tdist.all_reduce(sums)
            tdist.all_reduce(counts)
        delta = (counts.unsqueeze(1) * self.centers - sums) / (1.0 + counts.unsqueeze(1))
        self.centers.sub_(self.alpha * delta)


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
