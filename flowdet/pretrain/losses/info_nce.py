"""Symmetric in-batch InfoNCE (InsLoc's loss)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, k: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of row-aligned embeddings q, k [R, D] (L2-normalised): row i of q and of k
    are the positive pair, every other row a negative. Returns (loss, top-1 accuracy q → k)."""
    logits = q.float() @ k.float().t() / temperature
    target = torch.arange(q.shape[0], device=q.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    with torch.no_grad():
        acc = (logits.argmax(1) == target).float().mean()
    return loss, acc
