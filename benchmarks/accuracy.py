"""Accuracy on real river data: flowdet rows vs ultralytics, one fixed budget for every row.

Rows (all trained from scratch weights — no ImageNet or COCO weights exist offline for anyone):
  scratch-iou, scratch-ciou, patch-contrast+ciou, center-loss+ciou, self-emd+ciou (flowdet nano),
  yolov8n, yolo26n (ultralytics 8.4 built from yaml; run with --ultra-python pointing at an
  interpreter that has the `bench` extra).
Every row is scored by flowdet.metrics.coco_eval on the same val.json (conf 0.001, NMS 0.65,
maxDets up to 1000). Self-supervised rows pretrain on the TRAIN images without labels plus frames
mined from ../shared/data/video — never on val images. center-loss uses the train labels (it is
supervised pretraining, as in the reference study).

Label efficiency (--fractions): 10/25/50/100 % of train images (seeded subsets), scratch vs
--efficiency-method, each at the same number of iterations as the full-data row (epochs / fraction):
the grid of `flowdet efficiency` (flowdet.experiments.efficiency), run into OUT/efficiency with this
script's budget and the main table's pretrained backbone; plot copied to docs/img/label_efficiency.png.

Each row is its own subprocess of the real CLI (`python -m flowdet ...`), so a row is exactly what a
user runs; results go to OUT/results.json and are resumed (a finished row is not re-run).

    python benchmarks/accuracy.py --epochs 30 --img-size 640 --batch 16 --out runs/bench/acc
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
DATA = REPO.parent / "shared" / "data"
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "AR100", "AR1000")
FLOWDET_ROWS = ["scratch-iou", "scratch-ciou", "patch-contrast", "center-loss", "self-emd"]
ULTRA_ROWS = ["yolov8n", "yolo26n"]


def run(cmd: list[str], log: Path) -> float:
    t0 = time.time()
    with log.open("w") as f:
        print("$ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if r.returncode != 0:
        sys.exit(f"command failed (rc {r.returncode}); see {log}:\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return time.time() - t0


def flowdet_params(size: str) -> int:
    """Parameters of a one-class flowdet model of ``size`` (training form: a RepConv size counts its branches)."""
    from flowdet.models.yolox import build_model

    return sum(p.numel() for p in build_model(size, 1).parameters())


def flowdet_gflops(size: str, img: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from flowdet.core.size import InputSize
    from flowdet.models.yolox import build_model

    h, w = InputSize.parse(img)
    m = build_model(size, 1).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.zeros(1, 3, h, w))
    return fc.get_total_flops() / 1e9  # FLOPs = 2·MACs, the same convention as ultralytics GFLOPs


def rect_hw(h: int, w: int, imgsz: int, stride: int = 32) -> list[int]:
    """The input ultralytics predicts an h×w frame with at ``imgsz`` (rect letterbox: the longer side
    at imgsz, the other padded up to the stride) — what its ONNX must be timed at."""
    r = imgsz / max(h, w)
    return [-(-round(h * r) // stride) * stride, -(-round(w * r) // stride) * stride]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA / "grogol-960"), help="folder with train.json, val.json, images/")
    ap.add_argument("--video", default=str(DATA / "video"), help="unlabeled videos for mining")
    ap.add_argument("--out", default="runs/bench/accuracy")
    ap.add_argument("--size", default="nano")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--no-aug-epochs", type=int, default=None,
                    help="flowdet: leave unset for what a user gets (auto: round(epochs/6), max 15); "
                         "ultralytics close_mosaic gets the same number")
    ap.add_argument("--img-size", default="640", help="640 (square) or 960x544 (W×H); ultralytics rows take the longer side")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--pretrain-set", action="append", default=[], help="extra --set for every pretraining run")
    ap.add_argument("--train-set", action="append", default=[],
                    help="extra --set for every flowdet detector run (e.g. the short-schedule recipe: "
                         "train.lr=0.01 train.bn_momentum=0.1 train.min_lr_ratio=0.5)")
    ap.add_argument("--ultra-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra ultralytics train() argument for the ultralytics rows (e.g. nbs=8)")
    ap.add_argument("--ultra-imgsz", type=int, default=None,
                    help="ultralytics training imgsz (default: the longer side of --img-size)")
    ap.add_argument("--ultra-score-imgsz", default="",
                    help="also score the ultralytics rows at these sizes (rect, as ultralytics predicts): rows "
                         "NAME-sSIZE, e.g. 640,832,960 — each family at its own best input")
    ap.add_argument("--rows", default=",".join(FLOWDET_ROWS + ULTRA_ROWS))
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VAL;KEY=VAL",
                    help="an extra flowdet scratch-CIoU row NAME with its own --set values (e.g. "
                         "'nano-d-tiny=model.size=nano-d;assign.min_box_side=16;assign.min_k=3'); "
                         "run it by listing NAME in --rows")
    ap.add_argument("--fractions", default="", help="e.g. 0.1,0.25,0.5,1.0 for the label-efficiency curve")
    ap.add_argument("--efficiency-method", default="self-emd")
    ap.add_argument("--efficiency-seeds", default=None, help="seeds of the label-efficiency grid (default: --seed)")
    ap.add_argument("--efficiency-kinds", default="scratch,method",
                    help="which curves to run now: scratch, method or both (two lanes can split them)")
    ap.add_argument("--ultra-python", default=sys.executable, help="interpreter with ultralytics (the bench extra)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.efficiency_seeds = args.efficiency_seeds or str(args.seed)
    from flowdet.core.size import InputSize

    data, out = Path(args.data), Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    py = [sys.executable, "-m", "flowdet"]
    train_json, val_json, images = data / "train.json", data / "val.json", data / "images"
    variants = {}
    for v in args.variant:
        name, _, sets = v.partition("=")
        variants[name] = [x for x in sets.split(";") if x]
    if args.no_aug_epochs is None:  # flowdet's auto value (flowdet.detect.config.resolve_schedule)
        args.no_aug_epochs = min(15, round(args.epochs / 6))
        pass_no_aug = False
    else:
        pass_no_aug = True
    budget = {"train_set": args.train_set, "epochs": args.epochs, "img_size": args.img_size, "batch": args.batch,
              "no_aug_epochs": args.no_aug_epochs, "pretrain_epochs": args.pretrain_epochs, "data": str(data),
              "ultra_args": args.ultra_arg, "variants": variants}
    results["budget"] = budget

    def save() -> None:
        # Merge with what is on disk: two lanes (e.g. --rows a,b and --rows c,d on two cores) may share OUT.
        if res_path.exists():
            disk = json.loads(res_path.read_text())
            for key in ("rows", "pretrain_s"):
                results[key] = {**disk.get(key, {}), **results.get(key, {})}
        tmp = res_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, res_path)

    def pretrained(method: str) -> Path:
        bb = out / f"ssl-{method}" / "backbone.pt"
        if bb.exists():
            return bb
        if method == "center-loss":
            src = ["--ann", str(train_json), "--images", str(images)]
        else:
            frames = out / "frames"
            if not (frames / "manifest.jsonl").exists():
                run(py + ["mine", args.video, "--out", str(frames), "--every", "3"], out / "mine.log")
            src = ["--frames", str(frames), "--frames", str(train_json)]
        src += ["--exclude", str(val_json)]  # the leakage guard: no val image among the pretraining frames
        t = run(py + ["pretrain", "--method", method, *src, "--size", args.size, "--out", str(bb.parent),
                      "--epochs", str(args.pretrain_epochs), "--device", args.device,
                      *sum((["--set", s] for s in args.pretrain_set), [])], out / f"ssl-{method}.log")
        results.setdefault("pretrain_s", {})[method] = t
        save()
        return bb

    def detector(name: str, iou: str, backbone: Path | None, train: Path, extra: list[str] | None = None) -> None:
        """One flowdet row of the main table (full data; the label-efficiency grid is
        ``flowdet.experiments.efficiency``, the code behind `flowdet efficiency`)."""
        if name in results.get("rows", {}):
            return
        run_dir = out / name
        epochs, no_aug = args.epochs, args.no_aug_epochs
        sets = list(args.train_set) + list(extra or [])
        size = next((x.split("=", 1)[1] for x in reversed(sets) if x.startswith("model.size=")), args.size)
        cmd = py + ["train", "--data", str(train), "--images", str(images), "--val", str(val_json),
                    "--size", args.size, "--epochs", str(epochs), "--img-size", str(args.img_size),
                    "--batch", str(args.batch), "--iou-loss", iou, "--out", str(run_dir), "--workers", str(args.workers),
                    "--eval-interval", str(max(1, epochs)), "--device", args.device, "--seed", str(args.seed),
                    *(["--set", f"augment.no_aug_epochs={no_aug}"] if pass_no_aug else []),
                    *sum((["--set", x] for x in sets), [])]
        if backbone:
            cmd += ["--backbone", str(backbone)]
        t = run(cmd, out / f"{name}.train.log")
        run(py + ["eval", "--ckpt", str(run_dir / "last.pt"), "--ann", str(val_json), "--images", str(images),
                  "--img-size", str(args.img_size), "--out", str(run_dir / "eval")], out / f"{name}.eval.log")
        stats = json.loads((run_dir / "eval" / "metrics.json").read_text())
        stats = stats.get("metrics", stats)
        params = flowdet_params(size)
        results.setdefault("rows", {})[name] = {**{k: stats[k] for k in STAT_KEYS},
                                                 "train_s": t, "params": params, "size": size, "sets": sets,
                                                 "gflops": flowdet_gflops(size, args.img_size)}
        save()

    def ultra(name: str) -> None:
        if name in results.get("rows", {}):
            return
        ydir = out / "yolo-train"
        if not (ydir / "data.yaml").exists():
            run(py + ["convert", "coco2yolo", str(train_json), "--images", str(images), "--out", str(ydir)], out / "coco2yolo.log")
        udir = out / name
        imgsz = args.ultra_imgsz or max(InputSize.parse(args.img_size))
        run([args.ultra_python, str(REPO / "benchmarks" / "ultra_baseline.py"), "--yolo-dir", str(ydir),
             "--val-json", str(val_json), "--val-images", str(images), "--model", f"{name}.yaml",
             "--epochs", str(args.epochs), "--imgsz", str(imgsz), "--batch", str(args.batch),
             "--score-imgsz", args.ultra_score_imgsz,
             "--close-mosaic", str(args.no_aug_epochs), "--workers", str(args.workers),
             "--device", "cpu" if args.device in ("auto", "cpu") else args.device, "--seed", str(args.seed),
             "--out", str(udir),
             *sum((["--train-arg", a] for a in args.ultra_arg), [])],
            out / f"{name}.log")
        s = json.loads((udir / "summary.json").read_text())
        from flowdet.metrics.coco_eval import coco_evaluate

        scored = {imgsz: str(udir / "detections.json"), **{int(k): v for k, v in s.get("detections_at", {}).items()}}
        first = json.loads(val_json.read_text())["images"][0]
        fw, fh = int(first["width"]), int(first["height"])
        for size, det in sorted(scored.items()):
            stats = coco_evaluate(str(val_json), json.loads(Path(det).read_text()))
            row = name if size == imgsz else f"{name}-s{size}"
            results.setdefault("rows", {})[row] = {**{k: stats[k] for k in STAT_KEYS}, "train_imgsz": imgsz,
                                                    "score_imgsz": size, "score_hw": rect_hw(fh, fw, size),
                                                    "train_s": s["train_s"],
                                                    "params": s["params"], "gflops": s["gflops"]}
        save()

    for row in [r for r in args.rows.split(",") if r]:
        print(f"== {row}", flush=True)
        if row in ULTRA_ROWS:
            ultra(row)
        elif row in variants:
            detector(row, "ciou", None, train_json, extra=variants[row])
        elif row.startswith("scratch-"):
            detector(row, row.split("-", 1)[1], None, train_json)
        else:
            detector(row, "ciou", pretrained(row), train_json)

    if args.fractions:  # the label-efficiency grid: the same code as `flowdet efficiency`
        from flowdet.experiments.efficiency import EfficiencySpec, parse_fractions, run_efficiency

        method = args.efficiency_method
        warm = [float(x.split("=", 1)[1]) for x in args.train_set if x.startswith("train.warmup_epochs=")]
        kinds = {"scratch": "scratch", "method": "pretrained"}
        spec = EfficiencySpec(
            data=str(train_json), val=str(val_json), images=str(images), fractions=parse_fractions(args.fractions),
            method=method, seeds=[int(x) for x in args.efficiency_seeds.split(",")],
            kinds=[kinds[k] for k in args.efficiency_kinds.split(",") if k],
            epochs=args.epochs, no_aug_epochs=args.no_aug_epochs if pass_no_aug else -1,
            warmup_epochs=warm[-1] if warm else -1, pretrain_epochs=args.pretrain_epochs,
            backbone=str(pretrained(method)) if "method" in args.efficiency_kinds else "", size=args.size,
            img_size=str(args.img_size), batch=args.batch, workers=args.workers, device=args.device,
            train_sets=list(args.train_set), out=str(out / "efficiency"))
        eff = run_efficiency(spec)
        import shutil

        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(eff["plot"], REPO / "docs" / "img" / "label_efficiency.png")
        print(eff["table"])
        print(eff["verdict"])
    save()
    (out / "table.md").write_text(markdown_table(results))
    print(markdown_table(results))


LABELS = {"scratch-iou": "flowdet nano, scratch, IoU loss", "scratch-ciou": "flowdet nano, scratch, CIoU",
          "patch-contrast": "flowdet nano, patch-contrast + CIoU", "center-loss": "flowdet nano, center-loss + CIoU",
          "self-emd": "flowdet nano, self-EMD + CIoU", "yolov8n": "ultralytics YOLOv8n", "yolo26n": "ultralytics YOLO26n"}


def markdown_table(results: dict) -> str:
    """The main table (every row scored by the same pycocotools code), then the label-efficiency rows."""
    rows, pre = results.get("rows", {}), results.get("pretrain_s", {})
    head = ("| row | AP | AP50 | AP75 | APs | APm | AR@100 | AR@1000 | pretrain s | train s | params | GFLOPs@{} |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n").format(results.get("budget", {}).get("img_size", "?"))
    out = head
    for name, r in sorted(rows.items(), key=lambda kv: (kv[0].startswith("eff-"), list(LABELS).index(kv[0]) if kv[0] in LABELS else 99, kv[0])):
        kind = name.split("-", 1)[1].rsplit("-", 1)[0] if name.startswith("eff-") else name
        p = pre.get(kind)
        out += (f"| {LABELS.get(name, name)} | {r['AP']:.3f} | {r['AP50']:.3f} | {r['AP75']:.3f} | {r['APs']:.3f} | "
                f"{r['APm']:.3f} | {r['AR100']:.3f} | {r.get('AR1000', float('nan')):.3f} | {f'{p:.0f}' if p else '—'} | {r['train_s']:.0f} | "
                f"{r['params'] / 1e6:.2f} M | {r['gflops']:.2f} |\n")
    return out


if __name__ == "__main__":
    main()
