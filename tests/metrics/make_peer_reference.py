"""Make tests/metrics/data/peer_tracking.json: tracking scores of the peer libraries on deterministic
sequences, for tests/metrics/test_peer_check.py to compare flowdet's against.

The peers are not flowdet dependencies; run this in a separate venv that has them:

    python -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install motmetrics trackeval lap
    /tmp/peer-venv/bin/python tests/metrics/make_peer_reference.py

It imports nothing from flowdet: the sequences are made here from a seed (numpy only) and written into
the json with their boxes (xyxy, 2 decimals), so the test reads exactly what the peers scored.
Per case: TrackEval's HOTA (HOTA, DetA, AssA, LocA), Identity (IDF1, IDP, IDR) and CLEAR (MOTA, MOTP,
TP, FN, FP, IDSW), all at their default thresholds, fed the stored boxes and TrackEval's own box IoU;
motmetrics' IDF1 / IDP / IDR and MOTA (IoU >= 0.5 through its ``iou_matrix``; null where it gives
NaN or -inf, on empty input). The json records the versions that produced it.
"""
from __future__ import annotations

import argparse
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "peer_tracking.json"
SEED = 20260101


def _sequence(rng: np.random.Generator, frames: int, objects: int, field: float, drop: float, false_rate: float,
              switch: float, jitter: float) -> dict:
    """Objects of 20–40 px crossing a ``field``-px square (a small field: many overlaps, ambiguous
    matchings); the prediction jitters each box by ``jitter`` × its size, drops a share ``drop``, gives
    an object a new id with probability ``switch`` per frame (sometimes swapping with another object),
    and adds short-lived false tracks (``false_rate`` per frame)."""
    start = rng.integers(0, frames // 2, objects)
    end = np.minimum(frames, start + rng.integers(frames // 4, frames, objects))
    pos = rng.uniform(0, field, (objects, 2))
    vel = rng.uniform(-3, 3, (objects, 2))
    size = rng.uniform(20, 40, (objects, 2))
    track_of = np.arange(1, objects + 1) + 100
    next_id = 200
    false_tracks: list[list] = []     # [id, box, frames left]
    gt, pr = [], []
    for t in range(frames):
        alive = np.nonzero((start <= t) & (t < end))[0]
        p = pos + vel * t
        boxes = np.concatenate([p, p + size], 1)
        g_ids, g_boxes, p_ids, p_boxes = [], [], [], []
        for k in alive:
            if rng.random() < switch:
                if len(alive) > 1 and rng.random() < 0.5:   # swap ids with another live object
                    other = int(rng.choice(alive[alive != k]))
                    track_of[k], track_of[other] = track_of[other], track_of[k]
                else:
                    track_of[k], next_id = next_id, next_id + 1
        for k in alive:
            g_ids.append(int(k + 1))
            g_boxes.append(boxes[k])
            if rng.random() >= drop:
                wh = size[k]
                p_ids.append(int(track_of[k]))
                noise = np.concatenate([rng.normal(0, jitter, 2) * wh, rng.normal(0, jitter, 2) * wh])
                p_boxes.append(boxes[k] + noise)
        while rng.random() < false_rate:
            xy = rng.uniform(0, field, 2)
            false_tracks.append([next_id, np.concatenate([xy, xy + rng.uniform(15, 35, 2)]), int(rng.integers(1, 4))])
            next_id += 1
        for f in false_tracks:
            if f[2] > 0:
                p_ids.append(f[0])
                p_boxes.append(f[1] + rng.normal(0, 1.0, 4))
                f[2] -= 1
        false_tracks = [f for f in false_tracks if f[2] > 0]
        gt.append(_frame(g_ids, g_boxes))
        pr.append(_frame(p_ids, p_boxes))
    return {"gt": gt, "pred": pr}


def _frame(ids: list, boxes: list) -> dict:
    b = [[round(float(v), 2) for v in (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))] for x0, y0, x1, y1 in boxes]
    return {"ids": ids, "boxes": b}


def _toy() -> dict:
    """Three ground-truth objects, three tracks: track 11 follows object 1 for 20 frames; a one-frame
    overlap of object 1 with track 12, object 2 with track 11 and object 3 with track 13 makes a matching
    of three 1-frame pairs possible. The best id mapping (1 -> 11, worth 20 frames) has fewer pairs: a
    solver that maximises the number of pairs first scores IDF1 ~0.08 instead of ~0.95."""
    a, far = [10.0, 10.0, 40.0, 40.0], [300.0, 300.0, 330.0, 330.0]
    gt, pr = [], []
    for _ in range(20):
        gt.append(_frame([1], [a]))
        pr.append(_frame([11], [[a[0] + 1, a[1], a[2] + 1, a[3]]]))
    gt.append(_frame([1, 2, 3], [a, [100, 100, 130, 130], [200, 200, 230, 230]]))
    pr.append(_frame([12, 11, 13], [a, [100, 101, 130, 131], [200, 200, 231, 230]]))
    gt.append(_frame([], []))
    pr.append(_frame([14], [far]))
    return {"gt": gt, "pred": pr}


def cases(seed: int = SEED) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    out = {"toy_max_weight": _toy()}
    grid = [("clean", 40, 6, 300, 0.0, 0.0, 0.0, 0.02), ("dropped", 40, 6, 300, 0.3, 0.1, 0.0, 0.05),
            ("switches", 40, 6, 250, 0.1, 0.2, 0.08, 0.05), ("crowded", 40, 8, 150, 0.15, 0.2, 0.05, 0.08),
            ("crowded_noisy", 40, 8, 120, 0.3, 0.5, 0.1, 0.12), ("sparse_long", 60, 4, 400, 0.2, 0.1, 0.03, 0.05),
            ("dense_switchy", 30, 10, 160, 0.2, 0.3, 0.2, 0.1), ("loose_boxes", 40, 6, 200, 0.1, 0.2, 0.05, 0.2)]
    for name, *params in grid:
        for rep in range(2):
            out[f"{name}_{rep}"] = _sequence(rng, *params)
    empty_pred = _sequence(rng, 10, 3, 200, 0.0, 0.0, 0.0, 0.02)
    out["empty_prediction"] = {"gt": empty_pred["gt"], "pred": [_frame([], []) for _ in empty_pred["gt"]]}
    out["empty_ground_truth"] = {"gt": [_frame([], []) for _ in empty_pred["pred"]], "pred": empty_pred["pred"]}
    gaps = _sequence(rng, 30, 5, 200, 0.2, 0.2, 0.05, 0.05)
    for t in (5, 6, 17):                  # frames with no ground truth, and with no prediction
        gaps["gt"][t] = _frame([], [])
    for t in (10, 11, 25):
        gaps["pred"][t] = _frame([], [])
    out["gap_frames"] = gaps
    return out


def _trackeval(case: dict) -> dict:
    from trackeval.datasets._base_dataset import _BaseDataset
    from trackeval.metrics import CLEAR, HOTA, Identity

    g_index = {v: k for k, v in enumerate(sorted({i for f in case["gt"] for i in f["ids"]}))}
    p_index = {v: k for k, v in enumerate(sorted({i for f in case["pred"] for i in f["ids"]}))}
    data = {"num_timesteps": len(case["gt"]), "num_gt_ids": len(g_index), "num_tracker_ids": len(p_index),
            "num_gt_dets": sum(len(f["ids"]) for f in case["gt"]),
            "num_tracker_dets": sum(len(f["ids"]) for f in case["pred"]),
            "gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for g, p in zip(case["gt"], case["pred"]):
        data["gt_ids"].append(np.array([g_index[i] for i in g["ids"]], int))
        data["tracker_ids"].append(np.array([p_index[i] for i in p["ids"]], int))
        gb, pb = np.array(g["boxes"], float).reshape(-1, 4), np.array(p["boxes"], float).reshape(-1, 4)
        data["similarity_scores"].append(_BaseDataset._calculate_box_ious(gb, pb, box_format="x0y0x1y1"))
    quiet = {"PRINT_CONFIG": False}
    h = HOTA(quiet).eval_sequence(data)
    i = Identity(quiet).eval_sequence(data)
    c = CLEAR(quiet).eval_sequence(data)
    return {"HOTA": float(np.mean(h["HOTA"])), "DetA": float(np.mean(h["DetA"])), "AssA": float(np.mean(h["AssA"])),
            "LocA": float(np.mean(h["LocA"])), "IDF1": float(i["IDF1"]), "IDP": float(i["IDP"]), "IDR": float(i["IDR"]),
            "MOTA": float(c["MOTA"]), "MOTP": float(c["MOTP"]), "TP": int(c["CLR_TP"]), "FN": int(c["CLR_FN"]),
            "FP": int(c["CLR_FP"]), "IDSW": int(c["IDSW"])}


def _motmetrics(case: dict) -> dict:
    if not hasattr(np, "asfarray"):       # motmetrics 1.4.0 calls np.asfarray, gone in numpy 2
        np.asfarray = lambda a, dtype=float: np.asarray(a, dtype)  # type: ignore[attr-defined]
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for g, p in zip(case["gt"], case["pred"]):
        gb, pb = np.array(g["boxes"], float).reshape(-1, 4), np.array(p["boxes"], float).reshape(-1, 4)
        to_xywh = lambda b: np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)  # noqa: E731
        acc.update(g["ids"], p["ids"], mm.distances.iou_matrix(to_xywh(gb), to_xywh(pb), max_iou=0.5))
    s = mm.metrics.create().compute(acc, metrics=["idf1", "idp", "idr", "mota", "num_switches"], name="x")
    finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731  (its NaN / -inf on empty input)
    return {"IDF1": finite(s["idf1"].iloc[0]), "IDP": finite(s["idp"].iloc[0]), "IDR": finite(s["idr"].iloc[0]),
            "MOTA": finite(s["mota"].iloc[0]), "IDSW": int(s["num_switches"].iloc[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    table = {}
    for name, case in cases(args.seed).items():
        table[name] = {**case, "trackeval": _trackeval(case), "motmetrics": _motmetrics(case)}
        print(name, table[name]["trackeval"], table[name]["motmetrics"], flush=True)
    versions = {p: metadata.version(p) for p in ("trackeval", "motmetrics", "numpy", "scipy", "pandas")}
    versions["python"] = platform.python_version()
    doc = {"made_by": "tests/metrics/make_peer_reference.py", "seed": args.seed, "versions": versions,
           "notes": "boxes xyxy; IoU thresholds 0.5 (IDF1, MOTA), HOTA over alpha 0.05..0.95", "cases": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
