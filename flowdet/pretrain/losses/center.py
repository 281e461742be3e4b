"""Center loss: embeddings pulled to their class centre, the centres updated by a running mean."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.engine import dist


class CenterLoss(nn.Module):
    """Center loss, Wen et al., "A Discriminative Feature Learning Approach for Deep Face
    Recognition", ECCV 2016:

        L_C = ½ · mean_i ‖x_i − c_{y_i}‖²

    The class centres are a buffer, not a parameter: in training mode each call also moves them by
    Wen's update rule (their eq. 4), with the batch gathered over DDP ranks:

        c_j ← c_j − α · Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)

    Shapes: features [N, D], labels [N] (int in [0, num_classes)) → scalar loss.
    """

    centers: torch.Tensor  # [num_classes, D], a buffer (declared: nn.Module's __getattr__ is untyped)

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
