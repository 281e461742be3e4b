"""Training throughput (img/s) with the time split into data, forward, assignment+loss, backward+step.

Runs the real pipeline (synthetic FloW-like images → DetectionDataset with the preset's augmentation
→ YOLOX → YOLOXLoss with SimOTA → SGD + EMA) for a few iterations per (model size, input size).

    .venv/bin/python benchmarks/train_throughput.py --sizes nano tiny --img 320 640 --iters 5
    .venv/bin/python benchmarks/train_throughput.py --device cuda --batch 32 --iters 50 --json out.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(size: str, img: int, data_dir: Path, args: argparse.Namespace, device: torch.device) -> dict:
    from flowdet.config import load_config
    from flowdet.data.coco import load_coco
    from flowdet.data.dataset import DetectionDataset, build_loader
    from flowdet.detect.config import DetectConfig
    from flowdet.detect.loss import YOLOXLoss
    from flowdet.engine.ema import ModelEMA
    from flowdet.engine.schedule import param_groups
    from flowdet.models.yolox import build_model

    cfg = load_config(DetectConfig, args.config, [])
    ds = load_coco(data_dir / "annotations.json", data_dir / "images", check_images=False)
    dataset = DetectionDataset(ds.records, img, cfg.augment, seed=0, epochs=10**6, augment=not args.no_aug, cache=True)
    loader = build_loader(dataset, args.batch, args.workers, seed=0)
    torch.manual_seed(0)
    model = build_model(size, 1).to(device).train()
    amp = device.type == "cuda" and not args.no_amp
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, 5e-4), lr=1e-3, momentum=0.9, nesterov=True)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    ema = ModelEMA(model)
    loss_fn = YOLOXLoss(1, model.strides, "ciou")
    t = {"data": 0.0, "forward": 0.0, "loss": 0.0, "backward": 0.0}
    n_img, it, epoch = 0, 0, 0
    total = args.warmup + args.iters
    while it < total:
        loader.batch_sampler.set_epoch(epoch)
        epoch += 1
        t0 = time.perf_counter()
        for imgs, targets, _ in loader:
            imgs = imgs.to(device, non_blocking=True)
            if device.type == "cuda":
                imgs = imgs.contiguous(memory_format=torch.channels_last)
            targets = [x.to(device) for x in targets]
            _sync(device)
            t1 = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                levels = model(imgs)
            _sync(device)
            t2 = time.perf_counter()
            out = loss_fn(levels, targets)
            _sync(device)
            t3 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            scaler.scale(out["total"]).backward()
            scaler.step(opt)
            scaler.update()
            ema.update(model)
            _sync(device)
            t4 = time.perf_counter()
            if it >= args.warmup:  # first iterations pay allocator / autotune costs
                for k, a, b in (("data", t0, t1), ("forward", t1, t2), ("loss", t2, t3), ("backward", t3, t4)):
                    t[k] += b - a
                n_img += imgs.shape[0]
            it += 1
            if it >= total:
                break
            t0 = time.perf_counter()
    wall = sum(t.values())
    n_it = max(args.iters, 1)
    return {"size": size, "img": img, "batch": args.batch, "iters": args.iters, "img_s": n_img / wall,
            **{f"{k}_ms": 1000 * v / n_it for k, v in t.items()},
            **{f"{k}_share": v / wall for k, v in t.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["nano", "tiny"])
    ap.add_argument("--img", nargs="+", type=int, default=[320, 640])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default="yolox_nano", help="preset whose augment section is used")
    ap.add_argument("--no-aug", action="store_true", help="plain letterbox (no mosaic/affine/mixup)")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--images", type=int, default=16, help="synthetic images to generate")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from flowdet.data.synth import SynthConfig, generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        generate(data, SynthConfig(num_images=args.images, width=960, height=540, seed=0))
        print(f"device {device}, threads {args.threads}, batch {args.batch}, {args.iters} timed iterations "
              f"(+{args.warmup} warm-up), augment {'off' if args.no_aug else args.config}")
        print(f"{'size':<5} {'img':>4} {'img/s':>7} {'data ms':>8} {'fwd ms':>8} {'loss ms':>8} {'bwd ms':>8}")
        for size in args.sizes:
            for img in args.img:
                r = bench(size, img, data, args, device)
                rows.append(r)
                print(f"{size:<5} {img:>4} {r['img_s']:>7.2f} {r['data_ms']:>8.1f} {r['forward_ms']:>8.1f} "
                      f"{r['loss_ms']:>8.1f} {r['backward_ms']:>8.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
