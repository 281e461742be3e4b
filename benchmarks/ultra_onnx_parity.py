r"""Parity check: flowdet's torch-free runtime on ultralytics ONNX exports vs ultralytics' own predictions.

Trains YOLO26n (built from yolo26n.yaml, no pretrained weights; or continues from --model x.pt) briefly on a small synthetic set
(`flowdet synth`), exports it to ONNX twice (ultralytics 8.4.190 default = raw [1, 4+nc, N] with
metadata end2end False; and nms=False = end-to-end [1, 300, 6]), then scores on the same val json
with the same code (flowdet.metrics.coco_eval):

  (a) ultralytics' own predictions: YOLO(x.onnx).predict per val image (and YOLO(best.pt).predict,
      which letterboxes to a minimal rectangle instead of the export's square), conf 0.001,
      iou 0.65, max_det 1000 (flowdet eval's protocol), converted to COCO results;
  (b) `flowdet eval --model x.onnx` on flowdet's runtime (onnxruntime, 1 thread).

and runs `flowdet stream` on a synthetic video with the raw YOLO26n ONNX and torch unimportable.
Two interpreters: this script runs under flowdet's (pycocotools, onnxruntime) and calls itself
under --ultra-python for the ultralytics steps (the `bench` environment).

    nice -n 19 python benchmarks/ultra_onnx_parity.py --out runs/up1 --ultra-python /work/ultra-venv/bin/python \
        --train-minutes 10 --imgsz 160 --batch 8 --size 320x180 --min-size 20 --max-size 48 --train-images 200 --val-images-n 50
    # then continue from its weights (--model x.pt) into a fresh --out; docs/benchmarks.md has the two runs
    nice -n 19 python benchmarks/ultra_onnx_parity.py --out runs/up2 --model runs/up1/yolo_train/weights/last.pt \
        --train-minutes 27 --imgsz 160 --batch 8 --size 320x180 --min-size 20 --max-size 48 --train-images 200 --val-images-n 50

Exit 0 and "PARITY OK" when both |ΔAP| ≤ 0.005, the input tensors are equal, the raw AP > 0.05 and
the stream ran without torch. `--train-minutes` is wall-clock (ultralytics' `time=`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _ultra_step(args: argparse.Namespace) -> None:
    """Under the ultralytics interpreter: train, export both layouts, predict val with ultralytics."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(1)
    out = Path(args.out).resolve()
    best = out / "yolo_train" / "weights" / "last.pt"
    if not best.is_file():  # trained once; rerunning the check reuses the weights
        model = YOLO(args.model)
        t0 = time.time()
        model.train(data=str(out / "yolo" / "data.yaml"), epochs=args.epochs, time=args.train_minutes / 60,
                    imgsz=args.imgsz, batch=args.batch, workers=0, device="cpu", amp=False, plots=False, val=False,
                    pretrained=args.model if args.model.endswith(".pt") else False,  # .pt: continue from it
                    close_mosaic=2, warmup_epochs=1, seed=0, deterministic=False,
                    nbs=args.batch, cache="ram",  # one optimizer step per batch: few images, few minutes
                    project=str(out), name="yolo_train", exist_ok=True, verbose=False)
        (out / "train_seconds.txt").write_text(f"{time.time() - t0:.0f}\n")
    onnx_paths = {}
    for tag, kw in (("raw", {}), ("e2e", {"nms": False})):
        dst = out / f"yolo26n_{tag}.onnx"
        if not dst.is_file():
            p = YOLO(str(best)).export(format="onnx", imgsz=args.imgsz, device="cpu", **kw)
            os.replace(p, dst)
        onnx_paths[tag] = dst
    gt = json.loads(Path(args.val_json).read_text())
    cats = [c["id"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    for tag, weights in (("pt", best), *onnx_paths.items()):
        model = YOLO(str(weights), task="detect")
        results = []
        for im in gt["images"]:
            r = model.predict(str(Path(args.val_images) / im["file_name"]), imgsz=args.imgsz, conf=0.001, iou=0.65,
                              max_det=1000, verbose=False, device="cpu")[0]
            for (x1, y1, x2, y2), s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist()):
                results.append({"image_id": im["id"], "category_id": cats[int(c)],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
        (out / f"ultra_{tag}_detections.json").write_text(json.dumps(results))
        if tag == "raw":  # ultralytics' own input tensors for the first val images (preprocessing parity)
            import cv2
            import numpy as np

            files = [str(Path(args.val_images) / im["file_name"]) for im in gt["images"][:4]]
            tensors = [model.predictor.preprocess([cv2.imread(f)]).numpy()[0] for f in files]
            np.savez(out / "ultra_inputs.npz", files=np.array(files), inputs=np.stack(tensors))


def _box_gap(ultra_json: Path, flowdet_json: Path, top: int = 50) -> float:
    """For each image's top ultralytics detections, the nearest flowdet detection of (nearly) the
    same score: the largest box-coordinate gap in pixels (0 up to json rounding = same boxes)."""
    import numpy as np

    def by_image(p: Path) -> dict:
        d: dict = {}
        for r in json.loads(p.read_text()):
            d.setdefault(r["image_id"], []).append((r["score"], *r["bbox"]))
        return {k: np.array(sorted(v, reverse=True)) for k, v in d.items()}

    a, b = by_image(ultra_json), by_image(flowdet_json)
    worst = 0.0
    for i, dets in a.items():
        cand = b.get(i, np.zeros((0, 5)))
        for det in dets[:top]:
            near = cand[np.abs(cand[:, 0] - det[0]) < 1e-4]
            worst = max(worst, float(np.abs(near[:, 1:] - det[1:]).max(axis=1).min()) if len(near) else float("inf"))
    return worst


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    r = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kw)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/ultra_parity")
    ap.add_argument("--ultra-python", default="/work/ultra-venv/bin/python", help="interpreter with ultralytics")
    ap.add_argument("--model", default="yolo26n.yaml")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--epochs", type=int, default=40, help="upper bound; --train-minutes stops training first")
    ap.add_argument("--train-minutes", type=float, default=9.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-images", type=int, default=300)
    ap.add_argument("--val-images-n", type=int, default=60)
    ap.add_argument("--stream-conf", type=float, default=0.1, help="score threshold of the stream run")
    ap.add_argument("--size", default="480x270", help="synthetic frame size WxH")
    ap.add_argument("--min-size", type=float, default=12.0, help="synthetic object length range (px)")
    ap.add_argument("--max-size", type=float, default=36.0)
    ap.add_argument("--ultra-step", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--val-json", help=argparse.SUPPRESS)
    ap.add_argument("--val-images", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ultra_step:
        return _ultra_step(args)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "YOLO_OFFLINE": "1"}
    # Small objects at 480x270 (8-24 px at imgsz 320): the synthetic FloW-like scenes, not square,
    # so the letterbox pads (centred for ultralytics) and the unmapping is exercised.
    synth = ["--size", args.size, "--min-size", str(args.min_size), "--max-size", str(args.max_size),
             "--objects", "3-10"]
    for split, n, seed, extra in (("train", args.train_images, 1, []), ("val", args.val_images_n, 2, ["--video", "3"])):
        if not (out / split / "annotations.json").is_file():
            _run([py, "-m", "flowdet", "synth", out / split, "--images", n, "--seed", seed, *synth, *extra], env=env)
        if not (out / "yolo" / "labels" / split).is_dir():
            _run([py, "-m", "flowdet", "convert", "coco2yolo", out / split / "annotations.json", "--out", out / "yolo",
                  "--split", split], env=env)
    val_json, val_images = out / "val" / "annotations.json", out / "val" / "images"
    t0 = time.time()
    _run([args.ultra_python, __file__, "--ultra-step", "--out", out, "--model", args.model, "--imgsz", args.imgsz,
          "--epochs", args.epochs, "--train-minutes", args.train_minutes, "--batch", args.batch,
          "--val-json", val_json, "--val-images", val_images], env=env, cwd=out)
    ultra_s = time.time() - t0

    import cv2
    import numpy as np

    from flowdet.metrics.coco_eval import coco_evaluate
    from flowdet.runtime.predict.layouts import preprocess
    from flowdet.runtime.predict.onnx_runtime import OnnxPredictor

    ref = np.load(out / "ultra_inputs.npz")
    lay = OnnxPredictor(out / "yolo26n_raw.onnx", threads=1).layout
    ours = np.concatenate([preprocess([cv2.imread(str(f))], lay.meta.img_size, lay)[0] for f in ref["files"]])
    input_diff = float(np.abs(ours - ref["inputs"]).max()) if ours.shape == ref["inputs"].shape else float("inf")
    print(f"preprocessing: max |flowdet - ultralytics| over {len(ours)} val inputs {ours.shape}: {input_diff:g}")

    rows = {}
    for tag in ("pt", "raw", "e2e"):
        stats = coco_evaluate(str(val_json), json.loads((out / f"ultra_{tag}_detections.json").read_text()))
        rows[f"ultralytics predict ({tag})"] = stats
    for tag in ("raw", "e2e"):
        ev = out / f"flowdet_eval_{tag}"
        _run([py, "-m", "flowdet", "-q", "eval", "--model", out / f"yolo26n_{tag}.onnx", "--ann", val_json,
              "--images", val_images, "--out", ev, "--threads", "1", "--batch", "1"], env=env)
        rows[f"flowdet eval ({tag} onnx)"] = json.loads((ev / "metrics.json").read_text())["metrics"]
    # The stream, with torch unimportable (the same blocker as tests/runtime/test_torch_free.py).
    sys.path.insert(0, str(REPO / "tests"))
    from no_torch import BLOCK_TORCH

    jsonl = out / "stream_raw.jsonl"
    code = BLOCK_TORCH + (
        "import sys\nfrom flowdet.cli import main\n"
        f"try:\n    main(['stream', {str(out / 'val' / 'video.mp4')!r}, '--model', {str(out / 'yolo26n_raw.onnx')!r},"
        f" '--jsonl', {str(jsonl)!r}, '--conf', {str(args.stream_conf)!r}])\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('TORCH_MODULES', bad)\nsys.exit(code)\n")
    r = _run([py, "-c", code], env=env, cwd=REPO)
    lines = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    stream = {"frames": len(lines), "detections": sum(len(x.get("scores", [])) for x in lines),
              "torch_modules": r.stdout.strip().splitlines()[-1]}
    keys = ("AP", "AP50", "APs")
    print(f"\n{'predictions':34s} " + " ".join(f"{k:>7s}" for k in keys))
    for name, st in rows.items():
        print(f"{name:34s} " + " ".join(f"{st[k]:7.4f}" for k in keys))
    gaps = {tag: abs(rows[f"flowdet eval ({tag} onnx)"]["AP"] - rows[f"ultralytics predict ({tag})"]["AP"])
            for tag in ("raw", "e2e")}
    print(f"|AP flowdet - AP ultralytics| same onnx: raw {gaps['raw']:.4f}, e2e {gaps['e2e']:.4f}")
    box_gap = {tag: _box_gap(out / f"ultra_{tag}_detections.json", out / f"flowdet_eval_{tag}" / "detections.json")
               for tag in ("raw", "e2e")}
    print(f"top-50 detections/image, nearest same-score box: max gap raw {box_gap['raw']:.4f} px, "
          f"e2e {box_gap['e2e']:.4f} px")
    print(f"stream (torch blocked): {stream}")
    summary = {"rows": {k: {m: v[m] for m in keys} for k, v in rows.items()}, "ap_gap": gaps, "box_gap_px": box_gap, "stream": stream,
               "input_max_abs_diff": input_diff,
               "ultra_seconds": ultra_s, "imgsz": args.imgsz,
               "train_seconds": (out / "train_seconds.txt").read_text().strip()
               if (out / "train_seconds.txt").is_file() else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    ok = all(g <= 0.005 for g in gaps.values()) and input_diff < 1e-6 and rows["ultralytics predict (raw)"]["AP"] > 0.05 \
        and stream["frames"] > 0 and stream["torch_modules"] == "TORCH_MODULES []"
    print("PARITY OK" if ok else "PARITY FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
