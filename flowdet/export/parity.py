"""Export-time parity: ONNX Runtime against the PyTorch model it came from, on the same images.

Tolerances (fp32 export; fp16 in brackets). The reference is the fused fp32 PyTorch model.
- ``scores`` (probabilities in [0, 1]): max |Δ| < 1e-3 [5e-2].
- ``boxes``: compared in the head's **raw** regression space, so the tolerance means the same on
  every level and box size: centres as Δc / stride (the raw dx, dy) and sizes as |Δ log w|
  (the raw log w, log h); max < 1e-3 [2e-2]. A pixel tolerance would be either too loose for
  stride-8 anchors or fail trained models on summation-order noise (measured: 0.027 px on a
  25 px coordinate of a trained nano = 1e-3 relative, yet 2e-4 in raw units).
- detections after the shared NMS (flowdet.ops.postprocess) at ``conf``: every detection of one
  backend must match one of the other with the same class, |Δscore| within the score tolerance
  and every coordinate within 0.5 original pixels. A detection whose score lies within the score
  tolerance of ``conf`` may appear on one side only (a threshold tie, not a bug). fp32: no
  unmatched detection; [fp16: at most 5% of the reference's, since half-precision rounding
  flips near-tie NMS decisions].
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from flowdet.data.letterbox import preprocess_batch
from flowdet.errors import DataError, FlowdetError
from flowdet.paths import keep_inside, within
from flowdet.ops.postprocess import Detections, postprocess

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
TOLERANCES = {"fp32": {"scores": 1e-3, "boxes_raw": 1e-3, "unmatched": 0.0},
              "fp16": {"scores": 5e-2, "boxes_raw": 2e-2, "unmatched": 0.05}}


@dataclass
class ParityReport:
    images: int
    source: str
    precision: str
    scores_max_abs: float
    boxes_max_abs_px: float
    boxes_max_raw: float
    detections_ref: int
    detections_onnx: int
    detections_unmatched: int
    conf: float
    ok: bool

    def line(self) -> str:
        tol = TOLERANCES[self.precision]
        dets = (f"detections {self.detections_ref - self.detections_unmatched}/{self.detections_ref} equal "
                f"(onnx {self.detections_onnx}) at conf {self.conf:g}")
        if self.detections_ref == 0 and self.detections_onnx == 0:
            dets = f"no detections at conf {self.conf:g} on either side"
        return (f"parity ({self.images} {self.source} images, {self.precision}): "
                f"scores max|Δ| {self.scores_max_abs:.2e} (tol {tol['scores']:.0e}), "
                f"boxes max|Δ| {self.boxes_max_abs_px:.2e} px, raw {self.boxes_max_raw:.2e} "
                f"(tol {tol['boxes_raw']:.0e}), {dets} → {'OK' if self.ok else 'FAILED'}")

    def to_dict(self) -> dict:
        return asdict(self)


def synthetic_images(n: int = 4, size: tuple[int, int] = (720, 1280), seed: int = 0) -> list[np.ndarray]:
    """Water-like BGR frames (smooth gradient + ripples + noise) with small bright/dark blobs, so
    the parity check sees realistic statistics even when no real data is around."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for _ in range(n):
        base = np.array([90, 80, 50], np.float32) + rng.uniform(-20, 20, 3)
        ripple = 12 * np.sin(xx / rng.uniform(6, 20) + yy / rng.uniform(15, 40))
        img = base[None, None] + (ripple + yy / h * 30)[..., None] + rng.normal(0, 6, (h, w, 3))
        for _ in range(int(rng.integers(10, 30))):
            cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(3, 14))
            cv2.circle(img, (cx, cy), r, tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def load_images(source: str | Path | None, n: int = 4) -> tuple[list[np.ndarray], str]:
    """(images, kind). ``source``: a COCO json (first ``n`` images), an image folder, one image, or
    None for synthetic frames."""
    if source is None:
        return synthetic_images(n), "synthetic"
    p = Path(source)
    if p.suffix == ".json":
        try:
            from flowdet.files import read_text

            coco = json.loads(read_text(p))  # a FIFO is refused (DataError), not read forever
            files = [im["file_name"] for im in coco["images"][:n]]
        except (OSError, ValueError, RecursionError, KeyError, TypeError) as e:
            raise DataError(f"{p}: not a COCO json with 'images' ({type(e).__name__})") from None
        root = p.parent / "images" if (p.parent / "images").is_dir() else p.parent
        # names leading out of the json's folder (absolute, ../, a symlink out) are never read
        paths = [f for f in (within(root, n) if isinstance(n, str) else None for n in files) if f is not None]
    elif p.is_dir():
        paths = keep_inside(p, sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS))[:n]
    else:
        paths = [p]
    from flowdet.data.imread import ImageReadError, read_image

    images = []
    for q in paths:
        try:
            images.append(read_image(q))
        except ImageReadError as e:
            raise ImageReadError(f"{e.reason} (a --parity-data image)", q) from None
    if not images:
        raise DataError(f"{p}: no images found for the parity check")
    return images, "real"


def _unmatched(a: Detections, b: Detections, score_tol: float, conf: float, px: float = 0.5) -> int:
    """Detections of ``a`` with no partner in ``b`` (greedy, same class, scores and coordinates close)."""
    used = np.zeros(len(b), bool)
    missing = 0
    for box, s, c in zip(a.boxes, a.scores, a.class_ids):
        close = np.abs(b.boxes - box).max(axis=1) <= px if len(b) else np.zeros(0, bool)
        idx = np.flatnonzero((~used) & (b.class_ids == c) & (np.abs(b.scores - s) <= score_tol) & close)
        if idx.size:
            used[idx[0]] = True
        elif abs(float(s) - conf) > score_tol:
            missing += 1
    return missing


def _raw_box_delta(ref: np.ndarray, got: np.ndarray, strides: tuple[int, ...], hw: tuple[int, int]) -> float:
    """Max difference of two decoded box sets [B, N, 4] (xyxy) in the head's raw units:
    Δcentre / stride and |Δ log size| per anchor (anchor order = flowdet.models.head.flatten_levels)."""
    h, w = int(hw[0]), int(hw[1])
    per_anchor = np.concatenate([np.full((h // s) * (w // s), s, np.float64) for s in strides])
    if per_anchor.shape[0] != ref.shape[1]:
        raise FlowdetError(f"parity: {ref.shape[1]} anchors but strides {strides} at {h}x{w} give {per_anchor.shape[0]}")
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    d_ctr = np.abs((got[..., :2] + got[..., 2:]) - (ref[..., :2] + ref[..., 2:])) / 2 / per_anchor[None, :, None]
    size_r = np.maximum(ref[..., 2:] - ref[..., :2], 1e-6)
    size_g = np.maximum(got[..., 2:] - got[..., :2], 1e-6)
    d_size = np.abs(np.log(size_g) - np.log(size_r))
    return float(max(d_ctr.max(initial=0.0), d_size.max(initial=0.0)))


@torch.no_grad()
def check_parity(model: torch.nn.Module, predictor, images: list[np.ndarray], source: str = "real",
                 precision: str = "fp32", conf: float = 0.25, iou: float = 0.65) -> ParityReport:
    """``model``: the fused fp32 YOLOX the export came from; ``predictor``: an OnnxPredictor of it."""
    tol = TOLERANCES[precision]
    batch, ratios = preprocess_batch(images, predictor.img_size)
    ref_b, ref_s = [], []
    for i in range(batch.shape[0]):  # one at a time: batch-size-dependent kernels are not the point
        b, s = model.predict(torch.from_numpy(batch[i:i + 1]))
        ref_b.append(b.float().numpy())
        ref_s.append(s.float().numpy())
    rb, rs = np.concatenate(ref_b), np.concatenate(ref_s)
    ob, os_ = predictor.infer(batch)
    if ob.shape != rb.shape or os_.shape != rs.shape:
        raise FlowdetError(f"parity: output shapes differ (onnx {ob.shape}/{os_.shape}, torch {rb.shape}/{rs.shape})")
    d_scores = float(np.abs(os_ - rs).max())
    d_boxes = np.abs(ob.astype(np.float64) - rb)
    d_raw = _raw_box_delta(rb, ob, model.strides, batch.shape[2:])
    sizes = [im.shape[:2] for im in images]
    ref = postprocess(rb, rs, ratios, sizes, conf_thr=conf, iou_thr=iou)
    got = postprocess(ob, os_, ratios, sizes, conf_thr=conf, iou_thr=iou)
    unmatched = sum(_unmatched(r, g, tol["scores"], conf) + _unmatched(g, r, tol["scores"], conf)
                    for r, g in zip(ref, got))
    finite = bool(np.isfinite(ob).all() and np.isfinite(os_).all())
    n_ref = sum(len(r) for r in ref)
    ok = (finite and d_scores < tol["scores"] and d_raw < tol["boxes_raw"]
          and unmatched <= tol["unmatched"] * n_ref)
    return ParityReport(images=len(images), source=source, precision=precision, scores_max_abs=d_scores,
                        boxes_max_abs_px=float(d_boxes.max()), boxes_max_raw=d_raw,
                        detections_ref=n_ref, detections_onnx=sum(len(g) for g in got),
                        detections_unmatched=unmatched, conf=conf, ok=ok)
