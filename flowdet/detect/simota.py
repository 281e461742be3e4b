"""SimOTA label assignment (YOLOX), vectorised over anchors and ground-truth boxes.

Reference: Ge et al., "YOLOX: Exceeding YOLO Series in 2021", https://arxiv.org/abs/2107.08430,
section 2.2 ("SimOTA"), a simplification of OTA (Ge et al., CVPR 2021, https://arxiv.org/abs/2103.14259).

For one image with N anchors and M boxes:
    1. candidates: anchors whose centre is inside some box OR within ``center_radius`` strides of
       its centre (the union over boxes); only these are costed.
    2. cost[m, n] = BCE(sqrt(p_obj·p_cls)[n], onehot(class_m)) + 3 · (−log IoU(pred_n, gt_m))
                    + 1e5 · [anchor n not in box m AND centre region m]
                    + 1e5 · [anchor n in neither region of box m]
       The second penalty (not in YOLOX) only orders anchors that belong to other boxes' regions
       after the box's own: YOLOX would treat both alike.
    3. dynamic k_m = max(min_k, floor(Σ top-10 IoU(pred, gt_m))); box m takes its k_m cheapest anchors.
    4. an anchor taken by several boxes goes to the one for which it is cheapest.
    5. a box left with no anchor (a tiny box whose one anchor went to a bigger neighbour in 4)
       takes its cheapest anchor that is still free, so every box has >= 1 positive. A box with
       no anchor centre inside it (a 4 px box between grid points) still gets its cheapest
       centre-region anchor, even when that anchor's predicted box does not touch it (IoU 0):
       exactly the positives for which the CIoU loss, not the IoU loss, gives a gradient.

Tiny objects (flowdet's additions, all off by default in this function; see AssignSection):
    - ``min_box_side``: for the "in box" test a box smaller than this counts as that big around its
      centre. Without it 38% of Grogol boxes under 8 px contain no anchor centre at any stride, so
      every candidate carries the 1e5 penalty and the order among them is arbitrary.
      ``small_box_below`` narrows which boxes are enlarged: only those whose longer side is under it
      (0 = every box under ``min_box_side``). YOLO26's rule (Jocher et al. 2026, "Ultralytics YOLO26",
      §3.3: COCO APs 29.0 → 29.6) is ``min_box_side=16, small_box_below=8``.
    - ``min_k``: with tiny IoUs Σ top-10 IoU < 2, so 91% of Grogol boxes got k = 1 at initialisation
      (ultralytics' TAL takes up to 10 candidates per box); a floor on k gives them several positives.
    - ``cost="nwd"``: the geometry term and the dynamic-k sum use the Normalized Gaussian
      Wasserstein Distance (flowdet.ops.nwd) instead of IoU: smooth, and non-zero for boxes that
      do not overlap, where −log IoU is flat at 18.4 for every such anchor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from flowdet.core.defaults import NWD_CONSTANT
from flowdet.ops.iou import box_iou_pairwise, cxcywh_to_xyxy, iou_family
from flowdet.ops.nwd import nwd_pairwise

IOU_COST_WEIGHT = 3.0
GEOMETRY_PENALTY = 1e5
_LOG_IOU_EPS = 1e-8


@dataclass
class Assignment:
    """SimOTA's answer for one image (positives listed in ascending anchor order).

    Attributes:
        fg_mask: Positive anchors, shape [N] bool.
        matched_gt: Index into the image's boxes of each positive, shape [num_fg] long.
        matched_classes: Class of each positive's box, shape [num_fg] long.
        matched_iou: IoU of each positive's predicted box with its box, shape [num_fg] fp32
            (0 for the "missed" positives whose prediction does not touch the box).
    """

    fg_mask: torch.Tensor
    matched_gt: torch.Tensor
    matched_classes: torch.Tensor
    matched_iou: torch.Tensor

    @property
    def num_fg(self) -> int:
        return int(self.matched_gt.numel())

    @staticmethod
    def empty(num_anchors: int, device: torch.device) -> Assignment:
        long = torch.zeros(0, dtype=torch.long, device=device)
        return Assignment(torch.zeros(num_anchors, dtype=torch.bool, device=device), long, long.clone(),
                          torch.zeros(0, device=device))


def _pair_cost(
    pred_xyxy: torch.Tensor,
    pred_scores: torch.Tensor,
    gt_xyxy: torch.Tensor,
    gt_classes: torch.Tensor,
    in_box: torch.Tensor,
    in_centre: torch.Tensor,
    similarity: str = "iou",
    nwd_constant: float = NWD_CONSTANT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cost and similarity (IoU or NWD), both [m, n], of m boxes against n anchors (step 2)."""
    if similarity == "nwd":
        iou = nwd_pairwise(gt_xyxy, pred_xyxy, nwd_constant)
    else:
        iou = box_iou_pairwise(gt_xyxy, pred_xyxy)
    # YOLOX costs the geometric mean sqrt(obj·cls): the product of two sigmoids is too small early on.
    q = pred_scores.clamp(0, 1).sqrt()
    log_q, log_not_q = torch.log(q).clamp(min=-100), torch.log1p(-q).clamp(min=-100)
    # Σ_c BCE(q_c, onehot_c(g)) = −Σ_c log(1 − q_c) − log q_g + log(1 − q_g): O(n·C + m·n), not O(m·n·C).
    cls_cost = -log_not_q.sum(1)[None, :] - (log_q - log_not_q)[:, gt_classes].T
    geometry = (~(in_box & in_centre)).float() + (~(in_box | in_centre)).float()
    cost = cls_cost + IOU_COST_WEIGHT * -torch.log(iou + _LOG_IOU_EPS) + GEOMETRY_PENALTY * geometry
    return cost, iou


def _dynamic_k_matching(cost: torch.Tensor, iou: torch.Tensor, topk: int, min_k: int = 1) -> torch.Tensor:
    """[m, n] cost/IoU → [m, n] bool: each box's k_m cheapest anchors (steps 3–4)."""
    m, n = cost.shape
    top_iou = iou.topk(min(topk, n), dim=1).values
    ks = top_iou.sum(1).int().clamp(min=min(max(1, min_k), n), max=n)  # [m]; k >= 1 even when every IoU is 0
    max_k = int(ks.max())
    cheapest = cost.topk(max_k, dim=1, largest=False).indices  # [m, max_k], cheapest first
    take = torch.arange(max_k, device=cost.device)[None, :] < ks[:, None]
    matching = torch.zeros_like(cost, dtype=torch.bool).scatter_(1, cheapest, take)
    # Anchors claimed by several boxes: keep only the claim of the cheapest claimer.
    owner = cost.masked_fill(~matching, float("inf")).argmin(0)  # [n]
    claimed = matching.any(0)
    return torch.zeros_like(matching).scatter_(0, owner[None], claimed[None])


def candidate_test_boxes(gt: torch.Tensor, min_box_side: float, small_box_below: float = 0.0) -> torch.Tensor:
    """The boxes [M, 4] xyxy used for the "in box" candidate test: ``gt`` with each box smaller than
    ``min_box_side`` grown to it around its centre (only those whose longer side is under
    ``small_box_below`` when that is > 0). The loss and the IoUs always use ``gt`` itself."""
    if min_box_side <= 0:
        return gt
    centre, half = (gt[:, :2] + gt[:, 2:]) / 2, (gt[:, 2:] - gt[:, :2]) / 2
    enlarged = half.clamp(min=min_box_side / 2)
    if small_box_below > 0:
        small = (2 * half).amax(1, keepdim=True) < small_box_below
        enlarged = torch.where(small, enlarged, half)
    return torch.cat([centre - enlarged, centre + enlarged], 1)


@torch.no_grad()
def simota_assign(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    anchor_centers: torch.Tensor,
    anchor_strides: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    center_radius: float = 2.5,
    topk: int = 10,
    min_box_side: float = 0.0,
    min_k: int = 1,
    cost: str = "iou",
    nwd_constant: float = NWD_CONSTANT,
    small_box_below: float = 0.0,
) -> Assignment:
    """Assign positives to the anchors of one image (see the module docstring). fp32, no grad.

    Args:
        pred_boxes: Decoded predictions, shape [N, 4] cxcywh in input pixels.
        pred_scores: Joint probabilities p_obj · p_cls (after sigmoid, not logits), shape [N, C].
        anchor_centers: Anchor-cell centres ((gx + 0.5)·s, (gy + 0.5)·s), shape [N, 2] pixels.
        anchor_strides: Stride of each anchor, shape [N].
        gt_boxes: Boxes, shape [M, 4] xyxy in input pixels.
        gt_classes: Class index of each box, shape [M], in [0, C).
        center_radius: Half-side of the centre region, in strides.
        topk: Number of best IoUs summed for the dynamic k.
        min_box_side: Boxes smaller than this (px) are enlarged to it for the "in box" test; 0 = off.
        min_k: Lower bound of the dynamic k.
        cost: "iou" or "nwd": the similarity of the cost's geometry term and of the dynamic k.
        nwd_constant: C of the NWD, in pixels (only with cost="nwd").
        small_box_below: Only boxes whose longer side is under this (px) are enlarged by
            ``min_box_side``; 0 = every box smaller than ``min_box_side``.

    Returns:
        An :class:`Assignment`; every box gets >= 1 positive (needs N >= number of positives + M).
    """
    n = pred_boxes.shape[0]
    if pred_boxes.shape != (n, 4) or anchor_centers.shape != (n, 2) or anchor_strides.shape != (n,):
        raise ValueError(f"expected pred_boxes [N, 4], anchor_centers [N, 2], anchor_strides [N]; got "
                         f"{tuple(pred_boxes.shape)}, {tuple(anchor_centers.shape)}, {tuple(anchor_strides.shape)}")
    if pred_scores.ndim != 2 or pred_scores.shape[0] != n:
        raise ValueError(f"pred_scores must be [N, C] with N={n}, got {tuple(pred_scores.shape)}")
    m = gt_boxes.shape[0]
    if gt_boxes.shape != (m, 4) or gt_classes.shape != (m,):
        raise ValueError(f"expected gt_boxes [M, 4] and gt_classes [M], got {tuple(gt_boxes.shape)}, {tuple(gt_classes.shape)}")
    if not center_radius > 0 or topk < 1 or min_k < 1 or not min_box_side >= 0 or not small_box_below >= 0:
        raise ValueError(f"center_radius must be > 0, topk >= 1, min_k >= 1, min_box_side >= 0, small_box_below >= 0; "
                         f"got {center_radius}, {topk}, {min_k}, {min_box_side}, {small_box_below}")
    if cost not in ("iou", "nwd"):
        raise ValueError(f"cost must be 'iou' or 'nwd', got {cost!r}")
    device = pred_boxes.device
    if m == 0:
        return Assignment.empty(n, device)
    gt_classes = gt_classes.long()
    if int(gt_classes.min()) < 0 or int(gt_classes.max()) >= pred_scores.shape[1]:
        raise ValueError(f"gt_classes must lie in [0, {pred_scores.shape[1]}), got {gt_classes.tolist()}")

    pred_xyxy, scores = cxcywh_to_xyxy(pred_boxes.float()), pred_scores.float()
    gt, centres, strides = gt_boxes.float(), anchor_centers.float(), anchor_strides.float()

    # Geometry, [M, N].
    x, y = centres[None, :, 0], centres[None, :, 1]
    gt_c = (gt[:, :2] + gt[:, 2:]) / 2
    test = candidate_test_boxes(gt, min_box_side, small_box_below)
    in_box = (x > test[:, 0:1]) & (x < test[:, 2:3]) & (y > test[:, 1:2]) & (y < test[:, 3:4])
    radius = center_radius * strides[None, :]
    in_centre = ((x - gt_c[:, 0:1]).abs() < radius) & ((y - gt_c[:, 1:2]).abs() < radius)
    cand = (in_box | in_centre).any(0).nonzero().squeeze(1)
    if cand.numel() == 0:  # every box off the grid: let them compete for all anchors
        cand = torch.arange(n, device=device)

    cost_mat, sim = _pair_cost(pred_xyxy[cand], scores[cand], gt, gt_classes, in_box[:, cand], in_centre[:, cand],
                               cost, nwd_constant)
    matching = _dynamic_k_matching(cost_mat, sim, topk, min_k)  # [M, n_cand]
    fg_cand = matching.any(0)
    owner = torch.full((n,), -1, dtype=torch.long, device=device)
    owner[cand[fg_cand]] = matching[:, fg_cand].float().argmax(0)

    _give_orphans_an_anchor(owner, pred_xyxy, scores, gt, gt_classes, in_box, in_centre, cost, nwd_constant)

    fg_mask = owner >= 0
    matched_gt = owner[fg_mask]
    matched_iou = iou_family(pred_xyxy[fg_mask], gt[matched_gt], "iou", fmt="xyxy")
    return Assignment(fg_mask, matched_gt, gt_classes[matched_gt], matched_iou)


def _give_orphans_an_anchor(
    owner: torch.Tensor,
    pred_xyxy: torch.Tensor,
    scores: torch.Tensor,
    gt: torch.Tensor,
    gt_classes: torch.Tensor,
    in_box: torch.Tensor,
    in_centre: torch.Tensor,
    similarity: str = "iou",
    nwd_constant: float = NWD_CONSTANT,
) -> None:
    """Step 5, in place on ``owner`` [N] (box index or −1): boxes without a positive take their
    cheapest free anchor; orphans wanting the same anchor leave it to the cheapest of them, the
    others retry. Each round settles >= 1 orphan, and there is rarely more than one round."""
    m = gt.shape[0]
    orphans = (torch.bincount(owner[owner >= 0], minlength=m) == 0).nonzero().squeeze(1)
    if orphans.numel() == 0:
        return
    cost, _ = _pair_cost(pred_xyxy, scores, gt[orphans], gt_classes[orphans], in_box[orphans], in_centre[orphans],
                         similarity, nwd_constant)
    n, rows = owner.shape[0], torch.arange(orphans.numel(), device=owner.device)
    pending = torch.ones_like(rows, dtype=torch.bool)
    while bool(pending.any()):
        free_cost = cost.masked_fill((owner >= 0)[None, :] | ~pending[:, None], float("inf"))
        best_cost, choice = free_cost.min(1)  # [O]
        wants = pending & torch.isfinite(best_cost)
        if not bool(wants.any()):
            break  # no free anchor left (N too small for the boxes): nothing more to give
        lowest = torch.full((n,), float("inf"), device=owner.device)
        lowest = lowest.scatter_reduce(0, choice[wants], best_cost[wants], "amin")
        wins = wants & (best_cost <= lowest[choice])
        first = torch.full((n,), rows.numel(), device=owner.device).scatter_reduce(0, choice[wins], rows[wins], "amin")
        wins &= first[choice] == rows  # equal costs: the lower box index wins
        owner[choice[wins]] = orphans[wins]
        pending &= ~wins
