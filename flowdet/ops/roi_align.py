"""RoIAlign in plain torch (no torchvision): features of boxes pooled from a dense map.

He et al., "Mask R-CNN", ICCV 2017, with the half-pixel correction (``aligned=True`` in
torchvision's terms): a box's corners are continuous coordinates, pixel ``i`` has its centre at
``i + 0.5``. Each output bin averages ``sampling_ratio``² bilinear samples placed at the centres of a
regular sub-grid of the bin. Border rule (the one every RoIAlign uses): a sample more than one pixel
outside the map contributes 0; one within a pixel of the border is clamped onto it.

Vectorised over boxes, bins and samples (four gathers from the flattened map), so autograd gives the
backward pass for free. Used by InsLoc pretraining (``flowdet/pretrain/methods/insloc.py``); unlike the other
``flowdet/ops`` modules this one imports torch — the runtime never imports it.
"""
from __future__ import annotations

import torch


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = 2) -> torch.Tensor:
    """Pool ``rois`` from ``features``.

    Args:
        features: [N, C, H, W] dense map.
        rois: [K, 5] rows (batch index, x0, y0, x1, y1) in input-image pixels.
        output_size: bins per box side (``ph, pw`` or one int).
        spatial_scale: map pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin side (≥ 1; fixed, so the cost does not depend on box size).

    Returns: [K, C, ph, pw], same dtype as ``features``.
    """
    if features.dim() != 4:
        raise ValueError(f"features must be [N, C, H, W], got shape {tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be [K, 5] (batch index, x0, y0, x1, y1), got shape {tuple(rois.shape)}")
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be ≥ 1, got {sampling_ratio}")
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c, h, w = features.shape
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros((0, c, ph, pw))
    r = rois.to(features.dtype)
    idx = rois[:, 0].long()
    x0, y0 = r[:, 1] * spatial_scale - 0.5, r[:, 2] * spatial_scale - 0.5
    x1, y1 = r[:, 3] * spatial_scale - 0.5, r[:, 4] * spatial_scale - 0.5
    bin_w, bin_h = (x1 - x0) / pw, (y1 - y0) / ph
    s = sampling_ratio
    # sample offsets inside the box, in bins: (bin + (j + 0.5) / s) for each bin and sub-sample
    gy = (torch.arange(ph, dtype=r.dtype, device=r.device)[:, None]
          + (torch.arange(s, dtype=r.dtype, device=r.device)[None, :] + 0.5) / s).reshape(-1)  # [ph·s]
    gx = (torch.arange(pw, dtype=r.dtype, device=r.device)[:, None]
          + (torch.arange(s, dtype=r.dtype, device=r.device)[None, :] + 0.5) / s).reshape(-1)  # [pw·s]
    ys = y0[:, None] + gy[None, :] * bin_h[:, None]  # [K, ph·s]
    xs = x0[:, None] + gx[None, :] * bin_w[:, None]  # [K, pw·s]
    y_lo, y_hi, wy_hi, y_ok = _axis(ys, h)
    x_lo, x_hi, wx_hi, x_ok = _axis(xs, w)
    flat = features.permute(0, 2, 3, 1).reshape(n * h * w, c)  # [N·H·W, C]
    base = (idx * h * w)[:, None, None]  # [K, 1, 1]

    def gather(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        lin = base + yy[:, :, None] * w + xx[:, None, :]  # [K, Sy, Sx]
        return flat[lin.reshape(-1)].reshape(k, yy.shape[1], xx.shape[1], c)

    wy, wx = wy_hi[:, :, None, None], wx_hi[:, None, :, None]
    val = ((1 - wy) * (1 - wx) * gather(y_lo, x_lo) + (1 - wy) * wx * gather(y_lo, x_hi)
           + wy * (1 - wx) * gather(y_hi, x_lo) + wy * wx * gather(y_hi, x_hi))  # [K, Sy, Sx, C]
    val = val * (y_ok[:, :, None, None] & x_ok[:, None, :, None]).to(val.dtype)
    val = val.reshape(k, ph, s, pw, s, c).mean(dim=(2, 4))  # [K, ph, pw, C]
    return val.permute(0, 3, 1, 2).contiguous()


def _axis(t: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps along one axis: (low index, high index, weight of the high tap, in-range mask)."""
    ok = (t >= -1.0) & (t <= size)
    t = t.clamp(min=0.0)
    lo = t.floor().long()
    at_edge = lo >= size - 1
    lo = torch.where(at_edge, torch.full_like(lo, size - 1), lo)
    hi = torch.where(at_edge, lo, lo + 1)
    t = torch.where(at_edge, lo.to(t.dtype), t)
    return lo, hi, t - lo.to(t.dtype), ok
