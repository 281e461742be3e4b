"""Self-EMD: BYOL whose embedding is the dense feature map, two views compared by EMD.

Liu et al., "Self-EMD: Self-Supervised Object Detection without ImageNet", arXiv:2011.13677, 2020.
Our reading, adapted to tiny objects and a CPU budget:
- local features: each backbone level in ``levels`` avg-pooled to at most ``grid``×``grid`` → 1×1-conv
  projector (→ predictor on the online side); the same MLP applied to the mean-pooled map is the
  parallel global-vector path (with its own BYOL term, ``vector_weight``);
- EMD cost 1 − cos, marginal weights from the other view's global vector, entropic Sinkhorn in the
  log domain on the whole batch at once (``sinkhorn_emd``), a fixed small number of iterations;
- scale invariance: smaller-scale views (online only, matched to both large target views) and
  spatial-pyramid crops (SPC): a random sub-window of the online grid, per sample, matched to the
  whole target grid — done with zero-weight (masked) rows, so it costs no extra forward pass.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from flowdet.pretrain.config import MethodConfig
from flowdet.pretrain.crops import ViewSampler
from flowdet.pretrain.heads import ConvMLP
from flowdet.pretrain.losses.emd import EMDLoss
from flowdet.pretrain.losses.negative_cosine import NegativeCosineLoss
from flowdet.pretrain.methods.byol import BYOL, ema_update_, target_momentum
from flowdet.pretrain.registry import register_method

_LEVEL_INDEX = {"dark3": 0, "dark4": 1, "dark5": 2}


def _grid(x: torch.Tensor, grid: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x if (h <= grid and w <= grid) else F.adaptive_avg_pool2d(x, (min(h, grid), min(w, grid)))


def _local(x: torch.Tensor) -> torch.Tensor:
    """[B, D, H, W] → [B, H·W, D]."""
    return x.flatten(2).transpose(1, 2)


@register_method("self-emd", sampler=ViewSampler)
class SelfEMD(nn.Module):
    """Online: backbone → per level (pool to grid → projector → predictor) for the dense map and
    (mean-pool → projector → predictor) for the global vector; target: EMA copy of backbone +
    projectors. Batch as ``BYOL``: {"views": uint8 [B, 2, S, S, 3], "small": uint8 [B, K, s, s, 3]}."""

    def __init__(self, backbone: nn.Module, cfg: MethodConfig):
        super().__init__()
        self.backbone = backbone
        self.levels, self.grid = list(cfg.levels), cfg.grid
        chans = {lv: backbone.out_channels[_LEVEL_INDEX[lv]] for lv in self.levels}
        self.projectors = nn.ModuleDict({lv: ConvMLP(chans[lv], cfg.hidden_dim, cfg.proj_dim) for lv in self.levels})
        self.predictors = nn.ModuleDict({lv: ConvMLP(cfg.proj_dim, cfg.hidden_dim, cfg.proj_dim) for lv in self.levels})
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projectors = copy.deepcopy(self.projectors)
        for p in list(self.target_backbone.parameters()) + list(self.target_projectors.parameters()):
            p.requires_grad_(False)
        self.emd = EMDLoss(cfg.sinkhorn_eps, cfg.sinkhorn_iters, cfg.weight_eps)
        self.vector_loss = NegativeCosineLoss()
        self.vector_weight, self.spc, self.spc_min = cfg.vector_weight, cfg.spc, cfg.spc_min
        self.base_momentum = cfg.momentum

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        ema_update_(self.target_backbone, self.backbone, momentum)
        ema_update_(self.target_projectors, self.projectors, momentum)

    def after_step(self, step: int, total: int) -> None:
        self.update_target(target_momentum(step, total, self.base_momentum))

    def _heads(self, feats: dict[str, torch.Tensor], lv: str, online: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(local [N, D, g, g], global [N, D]) of one level.

        The g·g local features and the mean-pooled vector go through the MLPs as one [N, C, g·g+1, 1]
        tensor: the same weights (so the spaces match) and half the kernel launches, which dominate
        at these sizes on CPU."""
        proj = (self.projectors if online else self.target_projectors)[lv]
        x = feats[lv]
        local = _grid(x, self.grid)
        g = local.shape[-1]
        y = proj(torch.cat([local.flatten(2), x.mean((2, 3)).unsqueeze(2)], 2).unsqueeze(3))
        if online:
            y = self.predictors[lv](y)
        y = y.squeeze(3)
        return y[:, :, :-1].unflatten(2, (local.shape[-2], g)), y[:, :, -1]

    def _spc_mask(self, bsz: int, g: int, device: torch.device) -> torch.Tensor:
        """[B, g·g] bool: a random square sub-window per sample (side ⌈spc_min·g⌉ … g − 1)."""
        lo = max(1, math.ceil(self.spc_min * g))
        side = torch.randint(lo, max(lo, g - 1) + 1, (bsz,), device=device)
        x0 = (torch.rand(bsz, device=device) * (g - side + 1)).floor()
        y0 = (torch.rand(bsz, device=device) * (g - side + 1)).floor()
        ar = torch.arange(g, device=device)
        inx = (ar >= x0[:, None]) & (ar < (x0 + side)[:, None])  # [B, g]
        iny = (ar >= y0[:, None]) & (ar < (y0 + side)[:, None])
        return (iny[:, :, None] & inx[:, None, :]).flatten(1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        bsz = batch["views"].shape[0]
        large, small = BYOL.views_of(batch)
        k = 0 if small is None else batch["small"].shape[1]
        with torch.no_grad():
            tfeat = self.target_backbone(large)
        ofeat = self.backbone(large)
        sfeat = self.backbone(small) if small is not None else None
        total, emd_sum, vec_sum = 0.0, 0.0, 0.0
        for lv in self.levels:
            with torch.no_grad():
                zd, zg = self._heads(tfeat, lv, online=False)
            zl, zg = _local(zd).view(bsz, 2, -1, zd.shape[1]), zg.view(bsz, 2, -1)
            pd, pg = self._heads(ofeat, lv, online=True)
            g = pd.shape[-1]
            pl, pg = _local(pd).view(bsz, 2, g * g, -1), pg.view(bsz, 2, -1)
            full = torch.ones(bsz, g * g, dtype=torch.bool, device=pl.device)
            # every EMD problem of this level: (online local, mask, target local, online global, target global)
            probs = []
            for v in (0, 1):
                t = 1 - v
                probs.append((pl[:, v], full, zl[:, t], pg[:, v], zg[:, t]))
                if self.spc and g > 1:
                    probs.append((pl[:, v], self._spc_mask(bsz, g, pl.device), zl[:, t], pg[:, v], zg[:, t]))
            vec_terms = [self.vector_loss(pg[:, 0], zg[:, 1]), self.vector_loss(pg[:, 1], zg[:, 0])]
            if sfeat is not None:
                sd, sg = self._heads(sfeat, lv, online=True)
                sl, sg = _local(sd).view(bsz, k, -1, sd.shape[1]), sg.view(bsz, k, -1)
                smask = torch.ones(bsz, sl.shape[2], dtype=torch.bool, device=sl.device)
                for i in range(k):
                    for t in (0, 1):
                        probs.append((sl[:, i], smask, zl[:, t], sg[:, i], zg[:, t]))
                        vec_terms.append(self.vector_loss(sg[:, i], zg[:, t]))
            emd = self.emd(*_stack_padded(probs))
            vec = torch.stack(vec_terms).mean()
            total = total + emd + self.vector_weight * vec
            emd_sum, vec_sum = emd_sum + emd.detach(), vec_sum + vec.detach()
        n = len(self.levels)
        return {"loss": total / n, "emd": emd_sum / n, "vector": vec_sum / n}


def _stack_padded(probs: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Concatenate EMD problems along the batch, padding online locals to the largest N with
    masked (zero-weight) rows so one Sinkhorn call solves them all."""
    n = max(p[0].shape[1] for p in probs)
    pls, masks = [], []
    for pl, mask, *_ in probs:
        pad = n - pl.shape[1]
        pls.append(F.pad(pl, (0, 0, 0, pad)) if pad else pl)
        masks.append(F.pad(mask, (0, pad), value=False) if pad else mask)
    cat = torch.cat
    return (cat(pls), cat(masks), cat([p[2] for p in probs]), cat([p[3] for p in probs]), cat([p[4] for p in probs]))
