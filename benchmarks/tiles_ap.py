"""How much sliced inference changes COCO AP / APs on a labeled set (default: grogol val, 1920×1080+).

Runs the same model twice over the images — full frame only, then tiles + full frame
(``TiledPredictor``) — scores both with flowdet's COCO evaluation and prints the difference and the
cost (ms per image, views per image). Needs a TRAINED model (.onnx or .pt): with random weights
every AP is 0 and the comparison means nothing.

    python benchmarks/tiles_ap.py --model runs/train/best.onnx --tile 640 --overlap 0.2 \
        [--merge nms|wbf] [--val-json ../shared/data/grogol/val.json] [--limit 40] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from flowdet.core.imread import try_read_image

DEFAULT_VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grogol" / "val.json"
KEYS = ("AP", "AP50", "AP75", "APs", "APm", "AR100", "ARs", "AR1000")


def run(predictor, coco: dict, root: Path, conf: float, iou: float) -> tuple[list[dict], float]:
    results, seconds = [], 0.0
    cat_ids = getattr(predictor, "cat_ids", None)
    for im in coco["images"]:
        img, why = try_read_image(root / im["file_name"])
        if img is None:
            raise SystemExit(f"{root / im['file_name']}: {why}")
        t = time.perf_counter()
        det = predictor.predict([img], conf=conf, iou=iou)[0]
        seconds += time.perf_counter() - t
        results += det.to_coco(im["id"], cat_ids)
    return results, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="trained model.onnx / best.pt (required)")
    ap.add_argument("--val-json", default=str(DEFAULT_VAL))
    ap.add_argument("--images", default=None, help="image folder (default: images/ next to the json)")
    ap.add_argument("--tile", type=int, default=640)
    ap.add_argument("--overlap", type=float, default=0.2)
    ap.add_argument("--merge", choices=["nms", "wbf"], default="nms")
    ap.add_argument("--conf", type=float, default=0.001, help="score threshold (COCO eval: low)")
    ap.add_argument("--iou", type=float, default=0.65)
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not args.model:
        print("tiles_ap.py needs a trained model: pass --model best.onnx (or best.pt); random weights give AP 0 "
              "for both runs, so there is nothing to compare", file=sys.stderr)
        sys.exit(2)

    from flowdet.metrics.coco_eval import coco_evaluate
    from flowdet.runtime.predict.predictor import load_predictor
    from flowdet.runtime.predict.tiles import TiledPredictor

    val = Path(args.val_json)
    coco = json.loads(val.read_text())
    if args.limit:
        coco["images"] = coco["images"][:args.limit]
    root = Path(args.images) if args.images else (val.parent / "images")
    img_ids = [im["id"] for im in coco["images"]]
    base = load_predictor(args.model, threads=args.threads)
    tiled = TiledPredictor(base, args.tile, args.overlap, merge=args.merge)
    rows = {}
    for name, pred in (("full frame", base), (f"tiles {args.tile}/{args.overlap:g} + full ({args.merge})", tiled)):
        res, secs = run(pred, coco, root, args.conf, args.iou)
        stats = coco_evaluate(val, res, img_ids=img_ids)
        rows[name] = {**{k: round(stats[k], 4) for k in KEYS}, "ms_per_image": round(1000 * secs / len(img_ids), 1)}
        print(f"{name:<32} " + "  ".join(f"{k} {rows[name][k]:.3f}" for k in KEYS)
              + f"  {rows[name]['ms_per_image']:.0f} ms/img", flush=True)
    (full, tile) = rows.values()
    print("difference (tiles − full): " + "  ".join(f"{k} {tile[k] - full[k]:+.3f}" for k in KEYS))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "val": str(val), "images": len(img_ids),
                                               "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
