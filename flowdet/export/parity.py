"""Export-time parity: ONNX Runtime against the PyTorch model it came from, judged as a user would.

The reference is the fused fp32 PyTorch model; both run on the same letterboxed frames
(flowdet.export.parity_data picks them: real ones by default). Tolerances: ``TOLERANCES``
(fp32; fp16 looser: half-precision rounding), detections at ``PARITY_CONF``.

- outputs finite;
- ``scores`` (probabilities) on **every** anchor: max |Δ| ≤ 1e-3 [fp16 5e-2];
- ``boxes`` on the anchors scoring ≥ ``PARITY_CONF`` on either side (the ones a user can ever
  see): every coordinate within max(0.5 px, 1% of the box's side along its axis) [fp16 max(1 px,
  2%)]. Anchors scoring less are not judged on their boxes: their regression outputs are
  untrained, and exp() decoding turns float noise there into pixels (a 30-epoch nano-d: 22 px on
  anchors scoring 1e-6 of synthetic frames, while its detections were identical — issue 30);
- detections after the shared NMS (flowdet.core.postprocess) at ``PARITY_CONF``: matched one to
  one (same class, score within the score tolerance, box within the box tolerance, in original
  pixels). A detection with no partner is a *tie*, not a failure, when its score is within the
  score tolerance of the threshold, or when the other side kept an overlapping (IoU ≥ the NMS
  threshold) detection of its class scoring at least as high: NMS then suppressed it there, an
  order decided by near-equal scores. fp32: no other unmatched detection [fp16: ≤ 5% of the
  reference's].

A failure names the first offender: image, box and score on each side, and by how much.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from flowdet.core.boxes import box_iou, clip_xyxy
from flowdet.core.detections import Detections
from flowdet.core.letterbox import preprocess_batch
from flowdet.core.postprocess import postprocess
from flowdet.errors import FlowdetError
from flowdet.export.parity_data import ParityFrames, synthetic_images  # noqa: F401  (re-exported)

TOLERANCES = {"fp32": {"scores": 1e-3, "box_rel": 0.01, "box_px": 0.5, "unmatched": 0.0},
              "fp16": {"scores": 5e-2, "box_rel": 0.02, "box_px": 1.0, "unmatched": 0.05}}
# Detections are compared down to this score: below every threshold a user keeps (predict and
# stream 0.25, the tracker's low-score stage 0.1), above the flood of near-duplicate candidates.
PARITY_CONF = 0.05
PARITY_IOU = 0.65  # NMS IoU, predict's and stream's default
_COORDS = ("x1", "y1", "x2", "y2")


@dataclass
class ParityReport:
    images: int
    source: str             # "real" | "synthetic"
    origin: str             # which frames ("val.json (data.val)", or why synthetic)
    precision: str
    conf: float
    finite: bool
    scores_max_abs: float   # over every anchor
    anchors_checked: int    # anchors scoring >= conf on either side
    boxes_max_abs_px: float  # over those anchors, input pixels
    boxes_worst: float      # over those anchors, the largest |Δ| / its tolerance (≤ 1 passes)
    detections_ref: int
    detections_onnx: int
    detections_matched: int
    detections_unmatched: int  # without a partner and not a tie
    detections_ties: int
    ok: bool
    failure: str = ""       # the first offender, when not ok

    def line(self) -> str:
        tol = TOLERANCES[self.precision]
        src = f"{self.images} {self.source} images of {self.origin}" if self.source == "real" else \
            f"{self.images} synthetic images; {self.origin.removeprefix('synthetic: ')}"
        boxes = (f"boxes of {self.anchors_checked} anchors ≥ {self.conf:g}: max|Δ| {self.boxes_max_abs_px:.2e} px, "
                 f"worst {self.boxes_worst:.1e} of its tol max({tol['box_px']:g} px, {tol['box_rel']:.0%} of side)")
        ties = f", {self.detections_ties} tie(s)" if self.detections_ties else ""
        dets = (f"detections {self.detections_matched}/{self.detections_ref} matched (onnx {self.detections_onnx}"
                f"{ties}) at conf {self.conf:g}")
        if self.detections_ref == 0 and self.detections_onnx == 0:
            dets = f"no detections at conf {self.conf:g} on either side"
        verdict = "OK" if self.ok else f"FAILED: {self.failure}"
        return (f"parity ({src}, {self.precision}): scores max|Δ| {self.scores_max_abs:.2e} "
                f"(tol {tol['scores']:.0e}); {boxes}; {dets} → {verdict}")

    def to_dict(self) -> dict:
        return asdict(self)


def _fmt_box(b: np.ndarray) -> str:
    return "[" + " ".join(f"{v:.1f}" for v in b) + "]"


def box_excess(ref: np.ndarray, got: np.ndarray, rel: float, px: float) -> tuple[np.ndarray, np.ndarray]:
    """|Δ| of each coordinate over its tolerance max(px, rel · the reference box's side on that
    axis): (excess [..., 4], tolerance [..., 4]); ≤ 1 is within tolerance. Broadcasts."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    side = np.abs(ref[..., 2:] - ref[..., :2])
    tol = np.maximum(px, rel * np.concatenate([side, side], -1))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero tolerance: any Δ is inf, 0/0 NaN fails
        excess = np.abs(got - ref) / tol
    return excess, np.broadcast_to(tol, excess.shape)


def _difference(a_box, b_box, rel: float, px: float) -> str:
    """The coordinate of ``b_box`` farthest off ``a_box`` relative to its tolerance, in words."""
    ex, tol = box_excess(a_box, b_box, rel, px)
    k = int(np.argmax(np.nan_to_num(ex, nan=np.inf)))
    d = abs(float(b_box[k]) - float(a_box[k]))
    side = abs(float(a_box[2 + k % 2] - a_box[k % 2]))
    return (f"{_COORDS[k]} differs by {d:.2f} px = {d / max(side, 1e-9):.1%} of its "
            f"{'width' if k % 2 == 0 else 'height'} (tol {tol[k]:.2f} px)")


def _candidates(boxes: np.ndarray, scores: np.ndarray, ratio: float, size: tuple[int, int], conf: float) -> Detections:
    """One image's boxes scoring >= ``conf`` before NMS, in original pixels (as postprocess scales them)."""
    cls = scores.argmax(axis=1)
    best = scores[np.arange(scores.shape[0]), cls]
    m = best >= conf
    return Detections(clip_xyxy(boxes[m] / ratio, size[1], size[0]), best[m], cls[m])


def _match(a: Detections, b: Detections, tol: dict) -> list[tuple[int, int]]:
    """One-to-one pairs (i of a, j of b): same class, scores and every coordinate within tolerance;
    closest pairs first."""
    if not len(a) or not len(b):
        return []
    ex = box_excess(a.boxes[:, None], b.boxes[None], tol["box_rel"], tol["box_px"])[0].max(-1)
    ok = ((a.class_ids[:, None] == b.class_ids[None]) & (ex <= 1)
          & (np.abs(a.scores[:, None].astype(np.float64) - b.scores[None]) <= tol["scores"]))
    pairs, used_a, used_b = [], set(), set()
    for i, j in sorted(zip(*np.nonzero(ok)), key=lambda ij: ex[ij]):
        if i not in used_a and j not in used_b:
            pairs.append((int(i), int(j)))
            used_a.add(i)
            used_b.add(j)
    return pairs


def _has_partner(dets: Detections, k: int, pool: Detections, tol: dict) -> bool:
    return bool(_match(dets[k], pool, tol))


def _unmatched_text(side: str, other_side: str, img: str, dets: Detections, k: int, other: Detections,
                    tol: dict) -> str:
    box, score = dets.boxes[k], float(dets.scores[k])
    head = f"{img}: {side} detection {_fmt_box(box)} score {score:.4f} has no {other_side} partner"
    same = np.flatnonzero(other.class_ids == dets.class_ids[k])
    if not same.size:
        return head + f" ({other_side} has no detection of its class in this image)"
    j = same[int(np.argmax(box_iou(box[None], other.boxes[same])[0]))]
    return (head + f"; nearest {other_side} {_fmt_box(other.boxes[j])} score {float(other.scores[j]):.4f}: "
            f"{_difference(box, other.boxes[j], tol['box_rel'], tol['box_px'])}, score differs by "
            f"{abs(float(other.scores[j]) - score):.1e} (tol {tol['scores']:.0e})")


def _compare_detections(ref: list[Detections], got: list[Detections], ref_cand: list[Detections],
                        got_cand: list[Detections], ratios: list[float], label: list[str], tol_in: dict,
                        conf: float) -> tuple[int, int, int, str]:
    """(matched pairs, unmatched detections that are no tie, ties, the first unmatched one described).

    Boxes are in original pixels: the pixel floor (input pixels, where the float noise arises) is
    scaled by each image's letterbox ratio. A tie: a score within the score tolerance of ``conf``,
    or a partner among the other side's candidates before NMS (NMS suppressed it there:
    near-equal scores ordered the other way)."""
    matched = unmatched = ties = 0
    first = ""
    for i, (r, g) in enumerate(zip(ref, got)):
        tol = {**tol_in, "box_px": tol_in["box_px"] / ratios[i]}
        pairs = _match(r, g, tol)
        matched += len(pairs)
        for side, other, a, b, b_cand, paired in (
                ("torch", "onnx", r, g, got_cand[i], {p[0] for p in pairs}),
                ("onnx", "torch", g, r, ref_cand[i], {p[1] for p in pairs})):
            for k in (k for k in range(len(a)) if k not in paired):
                if abs(float(a.scores[k]) - conf) <= tol["scores"] or _has_partner(a, k, b_cand, tol):
                    ties += 1
                    continue
                unmatched += 1
                first = first or _unmatched_text(side, other, label[i], a, k, b, tol)
    return matched, unmatched, ties, first


def judge(ref_boxes: np.ndarray, ref_scores: np.ndarray, got_boxes: np.ndarray, got_scores: np.ndarray,
          ratios: list[float], sizes: list[tuple[int, int]], precision: str = "fp32",
          conf: float = PARITY_CONF, iou: float = PARITY_IOU, names: list[str] | None = None,
          source: str = "real", origin: str = "") -> ParityReport:
    """Compare two backends' decoded outputs (boxes [B, N, 4] input px, scores [B, N, C]) of the
    same letterboxed images (``ratios``, original ``sizes`` (h, w)) by the rules of this module."""
    tol = TOLERANCES[precision]
    names = names or [f"image {i}" for i in range(ref_boxes.shape[0])]
    label = [f"image {i} ({n})" if n != f"image {i}" else n for i, n in enumerate(names)]
    failures: list[str] = []
    finite = bool(np.isfinite(got_boxes).all() and np.isfinite(got_scores).all())
    if not finite:
        failures.append(f"non-finite onnx outputs ({int((~np.isfinite(got_boxes)).sum())} box and "
                        f"{int((~np.isfinite(got_scores)).sum())} score values)")
    d_scores = np.abs(got_scores.astype(np.float64) - ref_scores)
    d_scores = np.where(np.isfinite(d_scores), d_scores, np.inf)
    s_max = float(d_scores.max(initial=0.0))
    ref_best, got_best = ref_scores.max(-1), got_scores.max(-1)
    if s_max > tol["scores"]:
        b, n, _ = np.unravel_index(int(np.argmax(d_scores)), d_scores.shape)
        failures.append(f"{label[b]}: a score differs by {s_max:.1e} (tol {tol['scores']:.0e}) at the anchor with "
                        f"box {_fmt_box(ref_boxes[b, n])}: torch {ref_best[b, n]:.4f}, onnx {got_best[b, n]:.4f}")
    seen = (ref_best >= conf) | (got_best >= conf)
    excess, tol_px = box_excess(ref_boxes[seen], got_boxes[seen], tol["box_rel"], tol["box_px"])
    d_px = np.abs(got_boxes[seen].astype(np.float64) - ref_boxes[seen])
    worst = excess.max(-1) if excess.size else np.zeros(0)
    box_ok = not worst.size or bool(worst.max() <= 1)  # NaN fails too
    box_failure = ""
    if not box_ok:
        k = int(np.argmax(np.where(np.isfinite(worst), worst, np.inf)))
        b, n = (int(v[k]) for v in np.nonzero(seen))
        box_failure = (f"{label[b]}, anchor {n} (input px): torch {_fmt_box(ref_boxes[b, n])} score "
                       f"{ref_best[b, n]:.4f}, onnx {_fmt_box(got_boxes[b, n])} score {got_best[b, n]:.4f}: "
                       f"{_difference(ref_boxes[b, n], got_boxes[b, n], tol['box_rel'], tol['box_px'])}")

    ref = postprocess(ref_boxes, ref_scores, ratios, sizes, conf_thr=conf, iou_thr=iou)
    got = postprocess(got_boxes, got_scores, ratios, sizes, conf_thr=conf, iou_thr=iou)
    cands = [[_candidates(bx[i], sc[i], ratios[i], sizes[i], conf) for i in range(bx.shape[0])]
             for bx, sc in ((ref_boxes, ref_scores), (got_boxes, got_scores))]
    matched, unmatched, ties, first = _compare_detections(ref, got, cands[0], cands[1], ratios, label, tol, conf)
    n_ref = sum(len(r) for r in ref)
    dets_ok = unmatched <= tol["unmatched"] * n_ref
    ok = finite and s_max <= tol["scores"] and box_ok and dets_ok
    if not dets_ok:  # what a user sees first, then the anchor that explains it
        failures.append(f"{first} ({unmatched} unmatched in all)")
    if not box_ok:
        failures.append(box_failure)
    return ParityReport(images=len(ref), source=source, origin=origin, precision=precision, conf=conf,
                        finite=finite, scores_max_abs=s_max, anchors_checked=int(seen.sum()),
                        boxes_max_abs_px=float(d_px.max(initial=0.0)),
                        boxes_worst=float(np.nan_to_num(worst, nan=np.inf).max(initial=0.0)),
                        detections_ref=n_ref, detections_onnx=sum(len(g) for g in got), detections_matched=matched,
                        detections_unmatched=unmatched, detections_ties=ties, ok=ok,
                        failure="" if ok else failures[0])


@torch.no_grad()
def check_parity(model: torch.nn.Module, predictor, frames: ParityFrames, precision: str = "fp32",
                 conf: float = PARITY_CONF, iou: float = PARITY_IOU) -> ParityReport:
    """``model``: the fused fp32 YOLOX the export came from; ``predictor``: an OnnxPredictor of it."""
    batch, ratios = preprocess_batch(frames.images, predictor.img_size)
    ref_b, ref_s = [], []
    for i in range(batch.shape[0]):  # one at a time: batch-size-dependent kernels are not the point
        b, s = model.predict(torch.from_numpy(batch[i:i + 1]))
        ref_b.append(b.float().numpy())
        ref_s.append(s.float().numpy())
    rb, rs = np.concatenate(ref_b), np.concatenate(ref_s)
    ob, os_ = predictor.infer(batch)
    if ob.shape != rb.shape or os_.shape != rs.shape:
        raise FlowdetError(f"parity: output shapes differ (onnx {ob.shape}/{os_.shape}, torch {rb.shape}/{rs.shape})")
    return judge(rb, rs, ob, os_, ratios, [im.shape[:2] for im in frames.images], precision, conf, iou,
                 frames.names, frames.kind, frames.origin)
