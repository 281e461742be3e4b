"""The semi teacher's BN-folded copy: the teacher's function, kept in step with its EMA updates."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from flowdet.detect.folded import FoldedCopy  # noqa: E402
from flowdet.engine.ema import ModelEMA  # noqa: E402
from flowdet.models.yolox import build_model  # noqa: E402


def _trained_like(seed: int) -> torch.nn.Module:
    """nano-d with BN statistics and affine terms away from their init (folding them must matter)."""
    torch.manual_seed(seed)
    model = build_model("nano-d", 1).to(memory_format=torch.channels_last)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)


def test_folded_copy_computes_the_teacher_and_follows_its_ema_updates():
    student, x = _trained_like(0), torch.rand(2, 3, 64, 96) * 255
    teacher = ModelEMA(student, 0.5, tau=0)
    folded = FoldedCopy(teacher.ema, channels_last=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.modules())
    with torch.no_grad():
        _close(folded.model(x), teacher.ema(x))
        other = _trained_like(1)
        teacher.update(other)  # a large step (decay 0.5): weights, BN statistics and head all move
        stale = folded.model(x)
        assert max(float((s - t).abs().max()) for s, t in zip(stale, teacher.ema(x))) > 1e-2
        folded.refresh()
        _close(folded.model(x), teacher.ema(x))
    assert all(not p.requires_grad for p in folded.model.parameters())


def test_semi_teacher_forward_gives_the_plain_teachers_targets_and_a_trainable_loss(tmp_path):
    """SemiTeacher.teacher_forward (folded, inference mode) → the same Dense-Teacher loss as the plain
    teacher under no_grad, and the student's gradients flow through it (no inference-tensor error)."""
    import numpy as np
    from PIL import Image

    from flowdet.config import load_config
    from flowdet.detect.config import DetectConfig
    from flowdet.detect.semi import SemiTeacher

    frame = tmp_path / "f.jpg"
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(frame)
    cfg = load_config(DetectConfig, None, ["data.train=x.json", "train.epochs=4", "semi.burn_in_epochs=0",
                                           "train.workers=0"])
    student = _trained_like(0)
    semi = SemiTeacher(cfg, [frame], (64, 96), 1, student.strides, 2, 1, torch.device("cpu"), True, False)
    semi.batches(0, student)
    x = (torch.rand(2, 3, 64, 96) * 255).contiguous(memory_format=torch.channels_last)
    for _ in range(2):  # the second round: after a teacher update (the folded copy is refreshed)
        levels = student(x)
        got = semi.loss_fn(levels, semi.teacher_forward(x))
        with torch.no_grad():
            want = semi.loss_fn(levels, semi.teacher.ema(x))
        for k in ("total", "obj", "cls", "box", "topk_score"):
            torch.testing.assert_close(got[k].detach(), want[k].detach(), rtol=1e-4, atol=1e-5)
        got["total"].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.05 * torch.randn_like(p))
        semi.update(student)
