"""Training step throughput (img/s) on one identical batch: flowdet YOLOX vs an ultralytics model.

Both sides time the same thing on the same tensors: forward + loss (incl. label assignment: SimOTA
for flowdet, TAL for ultralytics) + backward + SGD step + EMA update. Data loading and augmentation
are left out, so the number is the model/loss cost; ``benchmarks/train_throughput.py`` gives
flowdet's data share and the accuracy table gives whole-run train time for both.

The batch is the first ``--batch`` Grogol train images, letterboxed to ``--img`` (flowdet's
contract) with their real boxes — tiny objects, tens per image, as in training. ``--impl flowdet``
writes it to ``--batch-file`` when missing; ``--impl ultralytics`` (run with an interpreter that has
the bench extra) only reads it, as RGB 0–1 with normalized xywh targets, which is what its trainer
feeds the model.

    .venv/bin/python benchmarks/train_step.py --impl flowdet --size nano --threads 1
    /path/bench/python benchmarks/train_step.py --impl ultralytics --model yolov8n.yaml --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from latency import _time  # the latency rows' median/CPU-time loop (the script's folder is on sys.path)

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grogol-960"


def make_batch(path: Path, ann: Path, images: Path, batch: int, img: int) -> None:
    from flowdet.core.letterbox import letterbox
    from flowdet.data.coco import load_coco, load_image

    ds = load_coco(ann, images, check_images=False)
    imgs, idx, boxes = [], [], []
    for i, rec in enumerate(ds.records[:batch]):
        canvas, r = letterbox(load_image(rec), img)
        imgs.append(canvas.transpose(2, 0, 1))
        keep = ~rec.ignore
        b = rec.boxes[keep].astype(np.float32) * r
        idx.append(np.full(len(b), i, np.int64))
        boxes.append(b)
    np.savez(path, imgs=np.stack(imgs), batch_idx=np.concatenate(idx), xyxy=np.concatenate(boxes))


def step_flowdet(data: dict, size: str):
    import torch

    from flowdet.detect.loss import YOLOXLoss
    from flowdet.engine.ema import ModelEMA
    from flowdet.engine.schedule import param_groups
    from flowdet.models.yolox import build_model

    imgs = torch.from_numpy(data["imgs"]).float()  # BGR 0–255, flowdet's input contract
    bi, xyxy = torch.from_numpy(data["batch_idx"]), torch.from_numpy(data["xyxy"])
    targets = [torch.cat([torch.zeros(int((bi == i).sum()), 1), xyxy[bi == i]], 1) for i in range(len(imgs))]
    model = build_model(size, 1).train()
    opt = torch.optim.SGD(param_groups(model, 5e-4), lr=1e-3, momentum=0.9, nesterov=True)
    ema, loss_fn = ModelEMA(model), YOLOXLoss(1, model.strides, "ciou")
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        out = loss_fn(model(imgs), targets)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        opt.step()
        ema.update(model)

    return step, params


def step_ultralytics(data: dict, cfg: str):
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import ModelEMA

    b, _, h, w = data["imgs"].shape
    imgs = torch.from_numpy(np.ascontiguousarray(data["imgs"][:, ::-1])).float() / 255  # RGB 0–1
    xyxy = torch.from_numpy(data["xyxy"])
    xywh = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2 / w, (xyxy[:, 1] + xyxy[:, 3]) / 2 / h,
                        (xyxy[:, 2] - xyxy[:, 0]) / w, (xyxy[:, 3] - xyxy[:, 1]) / h], 1)
    batch = {"img": imgs, "batch_idx": torch.from_numpy(data["batch_idx"]).float(),
             "cls": torch.zeros(len(xywh), 1), "bboxes": xywh}
    model = DetectionModel(cfg, nc=1, verbose=False)
    model.args = get_cfg()  # the trainer attaches its hyperparameters (box/cls/dfl gains) like this
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    ema = ModelEMA(model)
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        loss, _ = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # as its trainer does
        opt.step()
        ema.update(model)

    return step, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=["flowdet", "ultralytics"], required=True)
    ap.add_argument("--size", default="nano", help="flowdet model size")
    ap.add_argument("--model", default="yolov8n.yaml", help="ultralytics model yaml")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ann", type=Path, default=DATA / "train.json")
    ap.add_argument("--images", type=Path, default=DATA / "images")
    ap.add_argument("--batch-file", type=Path, default=Path("runs/bench/train_step_batch.npz"))
    ap.add_argument("--json", type=Path, help="write the result row here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.batch_file.exists():
        if args.impl != "flowdet":
            raise SystemExit(f"{args.batch_file} missing: run with --impl flowdet first (it writes the batch)")
        args.batch_file.parent.mkdir(parents=True, exist_ok=True)
        make_batch(args.batch_file, args.ann, args.images, args.batch, args.img)
    data = dict(np.load(args.batch_file))
    if data["imgs"].shape[0] != args.batch or data["imgs"].shape[-1] != args.img:
        raise SystemExit(f"{args.batch_file} holds {data['imgs'].shape}, not batch {args.batch} at {args.img}: delete it")
    name = args.size if args.impl == "flowdet" else Path(args.model).stem
    step, params = step_flowdet(data, args.size) if args.impl == "flowdet" else step_ultralytics(data, args.model)
    t = _time(step, args.iters, args.warmup)
    med, cpu_med = t["median_ms"] / 1000, t["cpu_ms"] / 1000
    row = {"impl": args.impl, "model": name, "params": params, "batch": args.batch, "img": args.img,
           "threads": args.threads, "iters": args.iters, "boxes": int(len(data["xyxy"])),
           "step_ms": round(1000 * med, 1), "cpu_step_ms": round(1000 * cpu_med, 1),
           "img_s": round(args.batch / med, 2), "img_s_cpu": round(args.batch / cpu_med, 2),
           "torch": torch.__version__}
    print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
