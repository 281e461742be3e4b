"""Train an ultralytics baseline (YOLOv8n / YOLO26n built from yaml, no pretrained weights) on a
flowdet COCO set and write its val predictions as a COCO results json, so flowdet's own
pycocotools code scores every row of the accuracy table identically.

Runs under any interpreter that has ultralytics (the `bench` extra); it imports nothing from
flowdet except through `--coco2yolo-dir`, which must already hold `flowdet convert coco2yolo`
output. Offline settings are forced here, not in the README: no weight/font downloads, no AMP
check (it downloads yolo11n.pt), plots off.

    python benchmarks/ultra_baseline.py --yolo-dir runs/bench/yolo --val-json val.json \
        --val-images DIR --model yolov8n.yaml --epochs 10 --imgsz 640 --batch 8 --out runs/bench/v8n
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yolo-dir", required=True, help="output of `flowdet convert coco2yolo` for the TRAIN split (holds data.yaml)")
    ap.add_argument("--val-json", required=True)
    ap.add_argument("--val-images", required=True)
    ap.add_argument("--model", default="yolov8n.yaml")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--close-mosaic", type=int, default=2, help="epochs without mosaic at the end (flowdet: no_aug_epochs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--warmup-epochs", type=float, default=1.0, help="flowdet's stated budget warms up for 1 epoch; ultralytics' default is 3")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0")),
                    help="torch CPU threads (0 = torch's default); ultralytics otherwise picks its own")
    ap.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra ultralytics train() argument, e.g. nbs=8 (one optimizer step per batch)")
    ap.add_argument("--score-imgsz", default="",
                    help="also score at these sizes (comma list; rect letterbox, as ultralytics predicts): "
                         "detections_<imgsz>.json each; the training --imgsz is always scored (detections.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from ultralytics import YOLO

    if args.threads > 0:  # after the ultralytics import, which may set its own
        import torch

        torch.set_num_threads(args.threads)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_yaml = Path(args.yolo_dir).resolve() / "data.yaml"
    extra = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.train_arg)}
    t0 = time.time()
    last = out / "train" / "weights" / "last.pt"
    if last.is_file():  # an interrupted row (a 30-epoch YOLO26n at 832 is ~3 h on one core): continue it
        print(f"resuming {last}", flush=True)
        model = YOLO(str(last))
        model.train(resume=True)
    else:
        model = YOLO(args.model)
        model.train(data=str(data_yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                    workers=args.workers, device=args.device, seed=args.seed, deterministic=False,
                    amp=False, plots=False, val=False, pretrained=False, close_mosaic=args.close_mosaic,
                    warmup_epochs=args.warmup_epochs, cache="ram",  # flowdet rows cache decoded images too
                    project=str(out), name="train", exist_ok=True, verbose=False, **extra)
    train_s = time.time() - t0  # of this process: a resumed row counts only its own part
    # After training: YOLO(yaml) builds the 80-class head; the trained model has nc = 1, like flowdet's rows.
    params = sum(p.numel() for p in model.model.parameters())

    gt = json.loads(Path(args.val_json).read_text())
    t1 = time.time()
    (out / "detections.json").write_text(json.dumps(predict_coco(model, gt, args.val_images, args.imgsz, args.device)))
    pred_s = time.time() - t1
    scored = {}
    for size in sorted({int(v) for v in args.score_imgsz.split(",") if v.strip()} - {args.imgsz}):
        path = out / f"detections_{size}.json"
        path.write_text(json.dumps(predict_coco(model, gt, args.val_images, size, args.device)))
        scored[size] = str(path)
    try:
        from ultralytics.utils.torch_utils import get_flops
        gflops = float(get_flops(model.model, args.imgsz))
    except Exception:
        gflops = float("nan")
    summary = {"model": args.model, "params": params, "gflops": gflops, "train_s": train_s,
               "predict_s": pred_s, "epochs": args.epochs, "warmup_epochs": args.warmup_epochs, "train_args": extra,
               "imgsz": args.imgsz, "batch": args.batch,
               "detections": str(out / "detections.json"), "detections_at": scored}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def predict_coco(model, gt: dict, images: str, imgsz: int, device: str) -> list[dict]:
    """ultralytics' own predictions (rect letterbox at ``imgsz``, the longer side) as COCO results."""
    cat_id = gt["categories"][0]["id"]
    results = []
    for im in gt["images"]:
        path = str(Path(images) / im["file_name"])
        r = model.predict(path, imgsz=imgsz, conf=0.001, iou=0.65, max_det=1000, verbose=False, device=device)[0]
        b = r.boxes
        for (x1, y1, x2, y2), s, c in zip(b.xyxy.tolist(), b.conf.tolist(), b.cls.tolist()):
            results.append({"image_id": im["id"],
                            "category_id": gt["categories"][int(c)]["id"] if int(c) < len(gt["categories"]) else cat_id,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    return results


if __name__ == "__main__":
    main()
