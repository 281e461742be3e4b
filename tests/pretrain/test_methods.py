"""Each method's loss: formula checks on small tensors, and a decrease over a few dozen steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from flowdet.pretrain.losses.center import CenterLoss
from flowdet.pretrain.losses.patch_contrast import PatchContrastLoss
from flowdet.pretrain.train import build_datasets, build_method

from .conftest import tiny_cfg


def test_patch_contrast_cosine_is_the_study_formula():
    g = torch.Generator().manual_seed(0)
    a, p, n = torch.randn(3, 8, generator=g), torch.randn(3, 2, 8, generator=g), torch.randn(3, 4, 8, generator=g)
    got = PatchContrastLoss("cosine", batch_negatives=False)(a, p, n)
    cos = lambda x: F.cosine_similarity(a[:, None], x, dim=-1).mean(1)  # noqa: E731
    want = (-cos(p) + cos(n)).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_infonce_with_batch_negatives_by_hand():
    g = torch.Generator().manual_seed(1)
    a, p, n = torch.randn(2, 4, generator=g), torch.randn(2, 1, 4, generator=g), torch.randn(2, 1, 4, generator=g)
    tau = 0.5
    got = PatchContrastLoss("infonce", tau, batch_negatives=True)(a, p, n)
    every = torch.cat([a[:, None], p, n], 1)  # [2, 3, 4]
    losses = []
    for i in range(2):
        negs = [n[i, 0]] + [every[1 - i, t] for t in range(3)]
        s_pos = F.cosine_similarity(a[i], p[i, 0], dim=0) / tau
        s_neg = torch.stack([F.cosine_similarity(a[i], x, dim=0) / tau for x in negs])
        losses.append(-(s_pos - torch.logsumexp(torch.cat([s_pos[None], s_neg]), 0)))
    assert got.item() == pytest.approx(torch.stack(losses).mean().item(), rel=1e-5)


def test_loss_arguments_validated():
    with pytest.raises(ValueError):
        PatchContrastLoss("l2")
    with pytest.raises(ValueError):
        PatchContrastLoss("infonce", temperature=0)
    with pytest.raises(ValueError):
        CenterLoss(2, 8, alpha=0)


def test_center_loss_value_and_wen_update():
    loss = CenterLoss(2, 3, alpha=0.5)
    x = torch.tensor([[1.0, 0, 0], [3.0, 0, 0], [0, 2.0, 0]])
    y = torch.tensor([0, 0, 1])
    val = loss(x, y)  # centres start at 0: ½·mean(1 + 9 + 4)
    assert val.item() == pytest.approx(14 / 6)
    # Wen's rule: Δc_0 = (2·0 − (1+3))/(1+2) = −4/3 → c_0 = 0.5·4/3 on x; Δc_1 = −2/2 → c_1 = 0.5 on y
    assert torch.allclose(loss.centers, torch.tensor([[2 / 3, 0, 0], [0, 0.5, 0]]))
    loss.eval()
    loss(x, y)
    assert torch.allclose(loss.centers, torch.tensor([[2 / 3, 0, 0], [0, 0.5, 0]]))  # no update in eval


def _train(cfg, steps: int, lr: float, probes: int = 0) -> tuple[list[float], list[float]]:
    """``steps`` AdamW steps of the method; returns the training losses and, with ``probes`` > 0, the
    mean loss on that many fixed batches (augmentations the training never sees) before and after."""
    torch.manual_seed(0)
    ds, _, _ = build_datasets(cfg)
    model = build_method(cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    out, n, b = [], len(ds), cfg.train.batch
    probe = [default_collate([ds[(10_000 + j, (j * b + k) % n)] for k in range(b)]) for j in range(probes)]

    def held() -> float:
        with torch.no_grad():
            torch.manual_seed(1)
            return float(np.mean([model(p)["loss"].item() for p in probe]))

    held_out = [held()] if probes else []
    for s in range(steps):
        batch = default_collate([ds[(s, (s * b + k) % n)] for k in range(b)])
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(model, "after_step"):
            model.after_step(s + 1, steps)
        out.append(loss.item())
    assert np.isfinite(out).all()
    return out, held_out + ([held()] if probes else [])


def _losses(cfg, steps: int, lr: float = 2e-3) -> list[float]:
    return _train(cfg, steps, lr)[0]


def _held_out(cfg, steps: int, lr: float) -> tuple[float, float]:
    """Held-out loss before and after training: far less noisy than comparing training batches,
    whose loss varies with their content."""
    before, after = _train(cfg, steps, lr, probes=4)[1]
    return before, after


def _decreases(losses: list[float], k: int = 6) -> bool:
    return float(np.mean(losses[-k:])) < float(np.mean(losses[:k]))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["cosine", "infonce"])
def test_patch_contrast_loss_decreases(smooth_frames, loss):
    # Temperature 0.5: at 0.2 InfoNCE sits at chance for ~50 steps before it learns (CPU-dependent luck
    # decided the old training-loss comparison); the held-out loss drops ~0.13 (InfoNCE) / 0.15 (cosine).
    cfg = tiny_cfg(**{"method.name": "patch-contrast", "method.loss": loss, "data.frames": f"[{smooth_frames}]",
                      "method.crop": 32, "method.patch": 48, "method.temperature": 0.5, "train.batch": 8})
    before, after = _held_out(cfg, 40, lr=1e-3)
    assert after < before - 0.05, (before, after)


def test_self_emd_loss_decreases(synth_frames):
    cfg = tiny_cfg(**{"method.name": "self-emd", "data.frames": f"[{synth_frames}]", "method.small_views": 1,
                      "method.hidden_dim": 64, "method.proj_dim": 32})
    losses = _losses(cfg, 24)
    assert _decreases(losses)


def test_byol_loss_decreases(synth_frames):
    cfg = tiny_cfg(**{"method.name": "byol", "data.frames": f"[{synth_frames}]", "method.small_views": 0,
                      "method.hidden_dim": 64, "method.proj_dim": 32})
    assert _decreases(_losses(cfg, 24))


def test_center_loss_decreases(synth_small):
    cfg = tiny_cfg(**{"method.name": "center-loss", "data.ann": str(synth_small / "annotations.json"),
                      "method.crop": 32, "method.patch": 32, "method.pos_per_image": 3, "method.neg_per_image": 3})
    assert _decreases(_losses(cfg, 24))
