"""A cheap representation probe: where in the frame is this patch? (InsLoc-style 3×3 localisation).

1. mine the real video (``flowdet.mine.miner``) and list the Grogol TRAIN images (no labels; the
   val split is never read);
2. split the Grogol train images by image: 75% "seen" (pretraining frames + probe training) and 25%
   held out (probe test only — never seen by pretraining);
3. pretrain each method briefly on CPU (its configs/pretrain_*.yaml preset, fewer steps) on mined
   frames + seen images (center-loss uses the seen images' boxes: it is the supervised one);
4. freeze each backbone (BN statistics recalibrated on the probe-train cells, the same for all), cut
   every image (640 px long side) into a 3×3 grid, embed each cell by avg-pooled dark4 ⊕ dark5, and fit
   a multinomial logistic regression (torch, L-BFGS, L2) predicting the cell index; report held-out
   accuracy (chance 1/9).

    .venv/bin/python benchmarks/probe.py --out /tmp/probe --steps 200 --batch 8 --threads 1
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
VARIANTS = {  # name → (preset under configs/, extra overrides)
    "patch-contrast": ("pretrain_patch_contrast", ["method.loss=cosine"]),
    "patch-contrast-infonce": ("pretrain_patch_contrast", ["method.loss=infonce"]),
    "center-loss": ("pretrain_center_loss", []),
    "byol": ("pretrain_byol", []),
    "self-emd": ("pretrain_self_emd", []),
    "insloc": ("pretrain_insloc", []),
}
CELL_W, CELL_H = 160, 96  # a 640×360 frame's 213×120 cells, resized to multiples of 32


def grid_cells(img, frame_size: int = 640):
    import cv2

    from flowdet.mine.frames import resize_long

    im, _ = resize_long(img, frame_size)
    h, w = im.shape[:2]
    cells = []
    for r in range(3):
        for c in range(3):
            cell = im[r * h // 3:(r + 1) * h // 3, c * w // 3:(c + 1) * w // 3]
            cells.append(cv2.resize(cell, (CELL_W, CELL_H), interpolation=cv2.INTER_AREA))
    return cells


def load_cells(paths: list[Path]):
    import numpy as np

    from flowdet.core.imread import read_image

    xs, ys = [], []
    for p in paths:
        img = read_image(p)  # flowdet's safe reader: a bad file is one clear error
        for k, cell in enumerate(grid_cells(img)):
            xs.append(cell)
            ys.append(k)
    return np.stack(xs), np.array(ys)


def features(backbone, cells, calib=None, batch: int = 64):
    """Pooled dark4 ⊕ dark5 of every cell; BN stats first recalibrated on ``calib`` cells."""
    import torch

    from flowdet.pretrain.heads import to_input

    if calib is not None:
        for m in backbone.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration pass
        backbone.train()
        with torch.no_grad():
            for i in range(0, len(calib), batch):
                backbone(to_input(torch.from_numpy(calib[i:i + batch])))
    backbone.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(cells), batch):
            f = backbone(to_input(torch.from_numpy(cells[i:i + batch])))
            out.append(torch.cat([f["dark4"].mean((2, 3)), f["dark5"].mean((2, 3))], 1))
    return torch.cat(out)


def linear_probe(xtr, ytr, xte, yte, l2: float = 1e-3, iters: int = 200) -> dict:
    import torch

    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ytr_t, yte_t = torch.as_tensor(ytr), torch.as_tensor(yte)
    lin = torch.nn.Linear(xtr.shape[1], 9)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xtr), ytr_t) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return {"train_acc": float((lin(xtr).argmax(1) == ytr_t).float().mean()),
                "test_acc": float((lin(xte).argmax(1) == yte_t).float().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/flowdet_probe")
    ap.add_argument("--variants", default="scratch," + ",".join(VARIANTS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", default="nano")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra pretrain override (all variants)")
    args = ap.parse_args()
    import torch

    from flowdet.config import load_config
    from flowdet.engine.checkpoint import load_checkpoint
    from flowdet.mine.miner import mine
    from flowdet.models.yolox import build_backbone
    from flowdet.pretrain.config import PretrainConfig
    from flowdet.pretrain.train import pretrain

    torch.set_num_threads(args.threads)
    video, train_json = SHARED / "video" / "open_water_floating.mp4", SHARED / "grogol" / "train.json"
    if not video.is_file() or not train_json.is_file():
        sys.exit(f"real data not present under {SHARED}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = mine([video], out / "frames", progress=False)
    print(f"mined {s['frames_in_manifest']} frames from {video.name}")
    data = json.loads(train_json.read_text())
    images = sorted(data["images"], key=lambda im: im["file_name"])
    random.Random(args.seed).shuffle(images)
    n_seen = int(0.75 * len(images))
    seen, held = images[:n_seen], images[n_seen:]
    root = train_json.parent / "images"
    (out / "seen.txt").write_text("\n".join(str(root / im["file_name"]) for im in seen) + "\n")
    seen_ids = {im["id"] for im in seen}
    sub = {"images": seen, "annotations": [a for a in data["annotations"] if a["image_id"] in seen_ids],
           "categories": data["categories"]}
    (out / "seen.json").write_text(json.dumps(sub))
    t0 = time.perf_counter()
    xtr, ytr = load_cells([root / im["file_name"] for im in seen])
    xte, yte = load_cells([root / im["file_name"] for im in held])
    print(f"probe cells: {len(xtr)} train ({len(seen)} images), {len(xte)} test ({len(held)} held-out images), "
          f"loaded in {time.perf_counter() - t0:.0f} s")
    results = {}
    for name in args.variants.split(","):
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        info: dict = {}
        if name == "scratch":
            backbone = build_backbone(args.size)
        else:
            frames_n = s["frames_in_manifest"] + len(seen)
            preset, extra = VARIANTS[name]
            sets = extra + [
                f"model.size={args.size}", f"train.out={out / name}", f"train.batch={args.batch}", "train.epochs=1",
                f"train.max_steps={args.steps}", f"train.threads={args.threads}", f"train.seed={args.seed}",
                f"data.samples_per_frame={max(1, math.ceil(args.steps * args.batch / frames_n))}",
                f"data.frames=[{out / 'frames'}, {out / 'seen.txt'}]", f"data.ann={out / 'seen.json'}",
                f"data.images={root}", "train.warmup_epochs=0.05"] + args.sets
            cfg = load_config(PretrainConfig, preset, sets)
            summ = pretrain(cfg)
            info = {"final_loss": summ["final_loss"], "pretrain_s": round(summ["seconds"], 1)}
            if "val_acc" in summ:
                info["fg_bg_val_acc"] = summ["val_acc"]
            backbone = build_backbone(args.size)
            backbone.load_state_dict(load_checkpoint(summ["backbone"])["state_dict"])  # weights_only=True
        ftr = features(backbone, xtr, calib=xtr)
        fte = features(backbone, xte)
        res = {**linear_probe(ftr, ytr, fte, yte), **info, "seconds": round(time.perf_counter() - t0, 1)}
        results[name] = res
        print(f"{name:24s} probe test acc {res['test_acc']:.3f} (train {res['train_acc']:.3f}) {info}", flush=True)
    (out / "probe.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
