"""InsLoc-style instance localization pretraining for tiny objects.

Yang et al., "Instance Localization for Self-supervised Detection Pretraining", CVPR 2021 (MoCo
framework; here in-batch InfoNCE, no queue or momentum encoder, to stay cheap on CPU). Our reading:
- composites (``flowdet/pretrain/composite.py``, drawn by ``datasets.CompositeDataset``): ``instances``
  crops of one frame pasted into a window of each of two other frames, at 8–32 px (the detector's
  object scale);
- the feature of each pasted box is pooled from the dense maps ``roi_levels`` (dark3 stride 8 and
  dark4 stride 16 by default: the levels the detector's P3/P4 heads see) by RoIAlign
  (``flowdet/ops/roi_align.py``) over the *jittered* box, concatenated over levels, projected by an
  MLP (Linear → BN → ReLU → Linear) and L2-normalised;
- loss (``losses/info_nce.py``): symmetric InfoNCE between the two composites — the same instance is the positive, every
  other pasted box of the batch (same composite included, so background alone cannot solve it) a
  negative.
Batch: {"views": uint8 [B, 2, S, S, 3], "boxes": float32 [B, 2, K, 4] xyxy in view px}.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.ops.roi_align import roi_align
from flowdet.pretrain.composite import CompositeSampler
from flowdet.pretrain.config import MethodConfig, PretrainConfig
from flowdet.pretrain.datasets import CompositeDataset
from flowdet.pretrain.heads import to_input
from flowdet.pretrain.losses.info_nce import info_nce
from flowdet.pretrain.registry import Need, register_method

_LEVEL = {"dark3": (0, 8), "dark4": (1, 16), "dark5": (2, 32)}  # name → (index in out_channels, stride)


def _fits(cfg: PretrainConfig, need: Need) -> None:
    m = cfg.method
    need(m.paste_scale[1] * m.paste_aspect ** 0.5 <= m.crop / 2, "method.paste_scale",
         f"a pasted crop must fit twice into the {m.crop} px composite: hi · √paste_aspect ≤ method.crop / 2")


@register_method("insloc", sampler=CompositeSampler, dataset=CompositeDataset, check=_fits)
class InsLoc(nn.Module):
    """backbone → RoIAlign of the pasted boxes on ``roi_levels`` → MLP projector → InfoNCE."""

    def __init__(self, backbone: nn.Module, cfg: MethodConfig):
        super().__init__()
        if cfg.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {cfg.temperature}")
        self.backbone = backbone
        self.levels = list(cfg.roi_levels)
        self.roi_size, self.temperature = cfg.roi_size, cfg.temperature
        c_in = sum(backbone.out_channels[_LEVEL[lv][0]] for lv in self.levels) * cfg.roi_size ** 2
        self.projector = nn.Sequential(nn.Linear(c_in, cfg.hidden_dim, bias=False), nn.BatchNorm1d(cfg.hidden_dim),
                                       nn.ReLU(inplace=True), nn.Linear(cfg.hidden_dim, cfg.proj_dim))

    def embed(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """images float [N, 3, S, S]; boxes [N, K, 4] xyxy → L2-normalised embeddings [N·K, D]."""
        n, k = boxes.shape[:2]
        feats = self.backbone(images)
        idx = torch.arange(n, device=boxes.device, dtype=boxes.dtype).repeat_interleave(k)[:, None]
        rois = torch.cat([idx, boxes.reshape(n * k, 4)], 1)
        pooled = [roi_align(feats[lv].float(), rois, self.roi_size, 1.0 / _LEVEL[lv][1]).flatten(1)
                  for lv in self.levels]
        return F.normalize(self.projector(torch.cat(pooled, 1)), dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b, _, k = batch["boxes"].shape[:3]
        emb = self.embed(to_input(batch["views"]), batch["boxes"].float().reshape(b * 2, k, 4))
        emb = emb.view(b, 2, k, -1)
        loss, acc = info_nce(emb[:, 0].reshape(b * k, -1), emb[:, 1].reshape(b * k, -1), self.temperature)
        return {"loss": loss, "acc": acc}
