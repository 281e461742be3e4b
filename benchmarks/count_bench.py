"""Counting benchmark: count decomposition (correct / redundant / false / missed), count precision and
recall, IDF1, HOTA and count error per minute for flowdet's ByteTracker vs SORT's configuration.

(a) tracker alone, fed ground-truth boxes: clean (2% jitter), and jitter 5% + 30% dropped + 5% false
    boxes; on the ``moving_objects`` simulation (many objects, debris drifting past a bridge camera)
    and on the ground truth of a ``flowdet synth --video`` video (``--video-dir``).
(b) end to end: ``--model model.onnx`` on the synthetic video (detector + tracker).
(c) every 4th frame only (Kalman frame gap dt = 4), for (a) and (b); on the synthetic video also with
    camera-motion compensation from the frames (``/gmc``, flowdet.runtime.track.gmc) and without the tracker's
    common-motion shift (``byte-nocm``).
Also: tracker cost per frame at 50 objects (CPU time of the tracking thread, `time.thread_time`, so a loaded box inflates it less than wall time).

    python benchmarks/count_bench.py --video-dir runs/synth_video [--model runs/demo/model.onnx] \
        [--json runs/bench/count.json]

IDF1 is reported twice: ``IDF1`` on the online output (a track is reported from its confirming frame
on) and ``IDF1_hist`` with each confirmed track's tentative frames added (the usual offline MOT
scoring of the same tracks).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowdet.core.detections import Detections  # noqa: E402
from flowdet.metrics.tracking import count_decomposition, count_error_per_interval, hota, idf1  # noqa: E402
from flowdet.runtime.track.simulation import corrupt, moving_objects  # noqa: E402
from flowdet.runtime.track.tracker import ASSIGNMENT, ByteTracker  # noqa: E402

SIM_SIZE = (640, 360)   # moving_objects' and corrupt's default frame


def load_video_gt(video_dir: Path) -> tuple[list, float, Path, tuple[int, int]]:
    d = json.loads((video_dir / "video_annotations.json").read_text())
    by_img: dict[int, list] = {im["id"]: [] for im in d["images"]}
    for a in d["annotations"]:
        by_img[a["image_id"]].append(a)
    frames = []
    for im in sorted(d["images"], key=lambda i: i["frame_index"]):
        anns = by_img[im["id"]]
        ids = np.array([a["track_id"] for a in anns], np.int64)
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], np.float64).reshape(-1, 4)
        frames.append((ids, boxes))
    im0 = d["images"][0]
    return frames, float(d["info"]["fps"]), video_dir / d["info"]["video"], (int(im0["width"]), int(im0["height"]))


def video_warps(video: Path, stride: int) -> tuple[list, float]:
    """Camera motion (flowdet.runtime.track.gmc) between every ``stride``-th frame; and its CPU ms per frame."""
    import cv2

    from flowdet.runtime.track.gmc import CameraMotion

    cap, cm, warps, cpu, k = cv2.VideoCapture(str(video)), CameraMotion(), [], 0.0, 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if k % stride == 0:
            t0 = time.thread_time()
            warps.append(cm.update(img))
            cpu += time.thread_time() - t0
        k += 1
    cap.release()
    return warps, 1000 * cpu / max(1, len(warps))


def run_tracker(tracker: ByteTracker, dets: list, fps: float, stride: int = 1, warps: list | None = None,
                frame_size: tuple[int, int] | None = SIM_SIZE) -> dict:
    """Track every ``stride``-th frame (Kalman frame gap dt = stride, as the runtime does; ``warps``: the
    camera motion per processed frame; ``frame_size``: (width, height), as the runtime passes it);
    outputs aligned to those frames."""
    out, hist, times = [], [], []
    cpu = 0.0
    for j, k in enumerate(range(0, len(dets), stride)):
        b, s = dets[k]
        det = Detections(b, np.asarray(s), np.zeros(len(s), np.int64))
        t0 = time.thread_time()
        ts = tracker.update(det, dt=stride, warp=None if warps is None else warps[j], frame_size=frame_size)
        cpu += time.thread_time() - t0
        out.append((np.array([t.id for t in ts], np.int64), np.array([t.box for t in ts]).reshape(-1, 4)))
        hist.append([(t.uid, t.box) for t in tracker.tracks if t.updated])
        times += [k / fps] * len(tracker.newly_confirmed)
    uid = {t.uid: t.id for t in tracker.tracks + tracker.graveyard}
    full = [(np.array([uid[u] for u, _ in h if uid.get(u, 0) > 0], np.int64),
             np.array([b for u, b in h if uid.get(u, 0) > 0]).reshape(-1, 4)) for h in hist]
    return {"out": out, "full": full, "count_times": times, "ms_per_frame": 1000 * cpu / max(1, len(out))}


def score(gt: list, res: dict, fps: float, stride: int, min_gt_frames: int) -> dict:
    g = gt[::stride]
    c = count_decomposition(g, res["out"], min_gt_frames=max(1, min_gt_frames // stride))
    first: dict[int, int] = {}
    for k, (ids, _) in enumerate(gt):
        for i in ids:
            first.setdefault(int(i), k)
    n_frames = {int(i): 0 for i in first}
    for ids, _ in gt:
        for i in ids:
            n_frames[int(i)] += 1
    gt_times = [first[i] / fps for i in first if n_frames[i] >= min_gt_frames]
    per_min = count_error_per_interval(gt_times, res["count_times"], 60.0, duration_s=len(gt) / fps)
    r = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
    r.update({"IDF1": round(idf1(g, res["out"])["IDF1"], 4), "IDF1_hist": round(idf1(g, res["full"])["IDF1"], 4),
              "HOTA": round(hota(g, res["out"])["HOTA"], 4), "count_mae_per_min": per_min["mae_per_interval"],
              "tracker_ms_per_frame": round(res["ms_per_frame"], 3)})
    return r


def cost_at(n_objects: int, frames: int = 300) -> float:
    """CPU ms (thread time) per update with ``n_objects`` tracked objects (plus 5% false boxes, 10% low-score)."""
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1000, (n_objects, 2))
    vel = rng.uniform(-3, 3, (n_objects, 2))
    tr = ByteTracker()
    cpu = 0.0
    for k in range(frames):
        pos += vel
        b = np.concatenate([pos, pos + 12], 1) + rng.normal(0, 0.5, (n_objects, 4))
        s = np.where(rng.random(n_objects) < 0.1, 0.3, 0.9)
        fb = rng.uniform(0, 1000, (max(1, n_objects // 20), 2))
        b = np.concatenate([b, np.concatenate([fb, fb + 10], 1)])
        s = np.concatenate([s, np.full(len(fb), 0.55)])
        det = Detections(b, s, np.zeros(len(s), np.int64))
        t0 = time.thread_time()
        tr.update(det)
        if k >= 20:
            cpu += time.thread_time() - t0
    return 1000 * cpu / (frames - 20)


def detect_video(model: str, video: Path, threads: int) -> list:
    import cv2

    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    p = OnnxPredictor(model, threads=threads)
    cap = cv2.VideoCapture(str(video))
    dets = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        d = p.predict([img], conf=0.1)[0]
        dets.append((d.boxes.astype(np.float64), d.scores.astype(np.float64)))
    cap.release()
    return dets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video-dir", type=Path, default=None, help="a `flowdet synth --video` output folder")
    ap.add_argument("--model", default=None, help="model.onnx for (b) end to end on the synthetic video")
    ap.add_argument("--sim-frames", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    n_init = ByteTracker().cfg.n_init
    results: dict = {"assignment": ASSIGNMENT, "n_init": n_init}
    inputs = {"sim": (moving_objects(args.sim_frames, seed=1), 10.0, SIM_SIZE)}
    video = None
    if args.video_dir:
        gt_v, fps_v, video, size_v = load_video_gt(args.video_dir)
        inputs["synth_video_gt"] = (gt_v, fps_v, size_v)
    warps = {}
    if video is not None:
        for stride in (1, 4):
            warps[stride], ms = video_warps(video, stride)
            results[f"gmc_ms_per_frame/every{stride}"] = round(ms, 3)
            print(f"camera motion (gmc) cost, every {stride}: {ms:.2f} ms/frame (CPU)", flush=True)
    no_cm = lambda: ByteTracker(common_motion_min=0)  # noqa: E731  (the tracker without the common-motion shift)
    for name, (gt, fps, size) in inputs.items():
        for case, kw in [("clean", dict(jitter=0.02)), ("noisy", dict(jitter=0.05, drop=0.3, false_rate=0.05))]:
            dets = corrupt(gt, seed=2, width=size[0], height=size[1], **kw)
            rows = [("byte", ByteTracker, 1, False), ("sort", ByteTracker.sort_baseline, 1, False),
                    ("byte", ByteTracker, 4, False), ("byte-nocm", no_cm, 4, False)]
            if name == "synth_video_gt":
                rows += [("byte", ByteTracker, 1, True), ("byte", ByteTracker, 4, True), ("byte-nocm", no_cm, 4, True)]
            for tname, make, stride, gmc in rows:
                key = f"a/{name}/{case}/{tname}" + (f"/every{stride}" if stride > 1 else "") + ("/gmc" if gmc else "")
                res = run_tracker(make(), dets, fps, stride, warps[stride] if gmc else None, size)
                results[key] = score(gt, res, fps, stride, n_init)
                print(key, json.dumps(results[key]), flush=True)
    if args.model and video is not None:
        gt_v, fps_v, size_v = inputs["synth_video_gt"]
        dets = detect_video(args.model, video, args.threads)
        for tname, make, stride, gmc in [("byte", ByteTracker, 1, False), ("sort", ByteTracker.sort_baseline, 1, False),
                                         ("byte", ByteTracker, 4, False), ("sort", ByteTracker.sort_baseline, 4, False),
                                         ("byte-nocm", no_cm, 4, False), ("byte", ByteTracker, 1, True),
                                         ("byte", ByteTracker, 4, True)]:
            key = f"b/{tname}" + (f"/every{stride}" if stride > 1 else "") + ("/gmc" if gmc else "")
            res = run_tracker(make(), dets, fps_v, stride, warps[stride] if gmc else None, size_v)
            results[key] = score(gt_v, res, fps_v, stride, n_init)
            print(key, json.dumps(results[key]), flush=True)
    for n in (10, 50, 100):
        results[f"cost_ms/{n}_objects"] = round(cost_at(n), 3)
        print(f"tracker cost at {n} objects: {results[f'cost_ms/{n}_objects']} ms/frame (CPU)", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
