"""RoIAlign (flowdet/ops/roi_align.py) against a slow per-sample reference, and its gradients."""
from __future__ import annotations

import math

import pytest
import torch

from flowdet.ops.roi_align import roi_align


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """The RoIAlign kernel's bilinear tap, written sample by sample (img [C, H, W])."""
    _, h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(img.shape[0], dtype=img.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(math.floor(y)), int(math.floor(x))
    if y_lo >= h - 1:
        y_lo = y_hi = h - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= w - 1:
        x_lo = x_hi = w - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    return ((1 - ly) * (1 - lx) * img[:, y_lo, x_lo] + (1 - ly) * lx * img[:, y_lo, x_hi]
            + ly * (1 - lx) * img[:, y_hi, x_lo] + ly * lx * img[:, y_hi, x_hi])


def _reference(feat, rois, out, scale, sr):
    res = torch.zeros(len(rois), feat.shape[1], out, out, dtype=feat.dtype)
    for k, (b, x0, y0, x1, y1) in enumerate(rois.tolist()):
        x0, y0, x1, y1 = (v * scale - 0.5 for v in (x0, y0, x1, y1))
        bh, bw = (y1 - y0) / out, (x1 - x0) / out
        for i in range(out):
            for j in range(out):
                acc = torch.zeros(feat.shape[1], dtype=feat.dtype)
                for iy in range(sr):
                    for ix in range(sr):
                        y = y0 + i * bh + (iy + 0.5) * bh / sr
                        x = x0 + j * bw + (ix + 0.5) * bw / sr
                        acc += _bilinear(feat[int(b)], y, x)
                res[k, :, i, j] = acc / (sr * sr)
    return res


@pytest.mark.parametrize("out,scale,sr", [(2, 1.0, 2), (3, 0.5, 1), (2, 0.25, 3)])
def test_matches_the_slow_reference(out, scale, sr):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 1.0, 2.0, 9.5, 8.0],       # inside
                         [1, -3.0, -2.0, 5.0, 4.0],     # over the top-left border
                         [0, 12.0, 10.0, 40.0, 30.0],   # over the bottom-right border (scaled maps)
                         [1, 3.3, 3.3, 3.9, 4.1],       # smaller than a pixel
                         [0, -30.0, -30.0, -10.0, -10.0]], dtype=torch.float64)  # wholly outside: zeros
    got = roi_align(feat, rois, out, scale, sr)
    want = _reference(feat, rois, out, scale, sr)
    assert got.shape == (5, 3, out, out)
    assert torch.allclose(got, want, atol=1e-12), (got - want).abs().max()
    assert torch.count_nonzero(got[4]) == 0


def test_a_pixel_box_returns_the_pixel():
    """aligned=True: the box [x, x+1]×[y, y+1] is pixel (y, x) exactly (an independent check)."""
    feat = torch.arange(2 * 4 * 5, dtype=torch.float32).reshape(1, 2, 4, 5)
    got = roi_align(feat, torch.tensor([[0, 3.0, 2.0, 4.0, 3.0]]), 1, 1.0, 2)
    assert torch.equal(got[0, :, 0, 0], feat[0, :, 2, 3])


def test_gradients_flow_to_features_and_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.7, 1.2, 4.9, 4.4], [0, 2.0, 0.1, 5.5, 3.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, 1.0, 2), (feat,))
    roi_align(feat, rois, 2, 1.0, 2).sum().backward()
    assert feat.grad is not None and feat.grad.abs().sum() > 0


def test_bad_shapes_are_refused_and_no_boxes_gives_empty():
    feat = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError):
        roi_align(feat, torch.zeros(3, 4), 2)
    with pytest.raises(ValueError):
        roi_align(feat[0], torch.zeros(3, 5), 2)
    with pytest.raises(ValueError):
        roi_align(feat, torch.zeros(3, 5), 2, sampling_ratio=0)
    assert roi_align(feat, torch.zeros(0, 5), 2).shape == (0, 2, 2, 2)
