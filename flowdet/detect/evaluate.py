"""`flowdet eval`: COCO metrics of any :class:`flowdet.runtime.predict.predictor.Predictor` (PyTorch, ONNX, TensorRT).

One code path for every backend: images are read here, the predictor letterboxes / runs / postprocesses
them, and pycocotools scores the results against the *cleaned* ground truth of ``load_coco``.
Defaults follow YOLOX's test protocol: score threshold 0.001, NMS IoU 0.65, at most 1000 boxes/image.
Torch-free at module level (the ONNX path needs only the core install plus pycocotools).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flowdet import log
from flowdet.core.imread import SkipLog
from flowdet.core.postprocess import invalid_message
from flowdet.data.coco import load_image
from flowdet.data.formats import load_dataset
from flowdet.data.records import DONT_CARE_RULES, CocoDataset, ImageRecord
from flowdet.detect.class_match import match_classes
from flowdet.errors import DataError, InputError
from flowdet.runtime.predict.predictor import Predictor


def dataset_label(ann: str | Path | CocoDataset, ds: CocoDataset) -> str:
    """The name the user gave the set (``data.yaml (val split)``, ``val.json``, ``labels``), never
    the cached conversion's file name (``data_val_354de3df….json``)."""
    if isinstance(ann, CocoDataset):
        return Path(str(ds.ann_path)).name
    p = Path(ann)
    return f"{p.name} (val split)" if p.suffix.lower() in (".yaml", ".yml") else p.name


def evaluate(predictor: Predictor, ann: str | Path | CocoDataset, images: str | Path | None = None,
             batch: int = 8, conf: float = 0.001, iou: float = 0.65, out_dir: str | Path | None = None,
             json_path: str | Path | None = None, progress: bool = True, verbose: bool = True,
             dont_care: str = "iscrowd") -> dict[str, Any]:
    """Predict every image of ``ann`` and return the COCO stats (AP, AP50, …, AR1000; see
    flowdet.metrics.coco_eval.METRICS) plus "images", "detections", "ms_per_image".

    The ground truth is scored as pycocotools scores its json (areas from the json, only ``iscrowd``
    boxes are don't-care); ``dont_care="training"`` makes ``ignore``/``difficult`` boxes don't-care
    too (flowdet.data.coco.DONT_CARE_RULES).

    With ``out_dir``: writes detections.json (unless ``json_path`` says where), metrics.json and
    pr_curve.png there. ``ann`` may be an already loaded CocoDataset (the trainer passes its own)."""
    import dataclasses

    from flowdet.core import validate
    from flowdet.metrics.coco_eval import coco_evaluate, format_table

    validate.predict_args(conf, iou, batch)
    if dont_care not in DONT_CARE_RULES:
        raise InputError(f"--dont-care must be one of {', '.join(DONT_CARE_RULES)}, not {dont_care!r}")
    for target, flag in ((out_dir, "--out"), (json_path, "--json")):
        if target is not None:
            (validate.writable_dir if flag == "--out" else validate.writable_file)(target, flag)
    ds = ann if isinstance(ann, CocoDataset) else load_dataset(ann, images, split="val", check_images=False)
    if ds.report.problems and verbose:
        # what the loader left out is not scored: say so (and how much), never silently
        log.warn(f"{ds.report.summary()} (`flowdet data check` lists them)")
    if not ds.records:
        raise DataError(f"{ds.ann_path}: no usable images to evaluate")
    # Model class i is scored as the category of the same name (flowdet.detect.class_match)
    match = match_classes(list(predictor.names), ds.names, ds.cat_ids, ds.ann_path)
    for msg in match.warnings:
        log.warn(msg)
    for msg in match.notes if verbose else ():
        log.info(f"note: {msg}")
    cat_ids = ds.cat_ids
    recs = ds.records
    skipped = SkipLog(show=10 if verbose else 0)
    results, scored, t_pred, invalid = _predict_all(predictor, recs, match.cat_of_class, batch, conf, iou, skipped,
                                                    progress)
    n_det = len(results)
    if not scored:
        raise DataError(f"none of the {len(recs)} images could be read ({skipped.summary()})", path=ds.ann_path)
    if skipped:
        if verbose:
            log.warn(f"{skipped.summary()}; they are not scored")
        ds = dataclasses.replace(ds, records=scored)
    recs = scored
    stats, E = coco_evaluate(ds.coco(dont_care), results, return_eval=True)
    stats = {**stats, "images": len(recs), "detections": n_det, "ms_per_image": 1000 * t_pred / len(recs),
             "images_unreadable": len(skipped), "images_skipped": ds.report.images_skipped,
             "problems": len(ds.report.problems), "invalid_outputs": invalid, "classes_matched_by": match.by,
             **({"classes_not_scored": match.model_only} if match.model_only else {}),
             **({"categories_without_class": match.gt_only} if match.gt_only else {})}
    if invalid:
        log.warn(invalid_message(invalid))
    from flowdet.metrics.prf import NOTHING_MATCHED, prf_sweep

    sweep = prf_sweep(recs, results, cat_ids, dont_care=dont_care)
    # The threshold to deploy at: AP averages over all of them, a camera runs at one.
    stats.update({"best_f1": sweep["best_f1"], "best_f1_conf": sweep["best_conf"], "precision_at_best":
                  sweep["precision_at_best"], "recall_at_best": sweep["recall_at_best"], "tp_at_best": sweep["tp"],
                  "fp_at_best": sweep["fp"], "fn_at_best": sweep["fn"]})
    if verbose:
        log.result(format_table(stats))
        log.result(f"{len(recs)} images scored, {n_det} detections (conf ≥ {conf}, NMS IoU {iou}), "
                   f"{stats['ms_per_image']:.1f} ms/image (batch {batch}, incl. pre/postprocess)")
        if sweep["best_f1"] > 0:
            log.result(f"best F1 {sweep['best_f1']:.3f} at conf {sweep['best_conf']:.3f} (IoU 0.5): precision "
                       f"{stats['precision_at_best']:.3f}, recall {stats['recall_at_best']:.3f}, "
                       f"TP {sweep['tp']} FP {sweep['fp']} FN {sweep['fn']}")
        else:
            log.result(f"{NOTHING_MATCHED} ({n_det} detections, {sweep['fn']} labels missed)")
    if out_dir is not None or json_path is not None:
        stats["paths"] = _write_outputs(stats, results, E, sweep, out_dir, json_path, ann, ds, conf, iou, predictor)
    return stats


def _predict_all(predictor: Predictor, recs: list[ImageRecord], cat_of_class: Any, batch: int, conf: float,
                 iou: float, skipped: SkipLog, progress: bool) -> tuple[list[dict], list[ImageRecord], float, int]:
    """(COCO results, the records scored, seconds in ``predict``, invalid outputs dropped) over ``recs``
    in batches; an image that cannot be read goes to ``skipped`` and is left out of the score (one bad
    file does not end the run)."""
    from tqdm import tqdm

    from flowdet.core.imread import ImageReadError

    results: list[dict] = []
    scored: list[ImageRecord] = []
    t_pred, invalid = 0.0, 0
    bar = tqdm(total=len(recs), desc="eval", unit="img", disable=None if progress else True, leave=False)
    for s in range(0, len(recs), batch):
        chunk, imgs = [], []
        for r in recs[s:s + batch]:
            try:
                imgs.append(load_image(r))
                chunk.append(r)
            except ImageReadError as e:
                skipped.add(e.path, e.reason)
        if chunk:
            t0 = time.perf_counter()
            dets = predictor.predict(imgs, conf=conf, iou=iou)
            t_pred += time.perf_counter() - t0
            for r, d in zip(chunk, dets):
                results.extend(d.to_coco(r.image_id, cat_of_class))
                invalid += d.invalid
            scored += chunk
        bar.update(len(recs[s:s + batch]))
    bar.close()
    return results, scored, t_pred, invalid


def _write_outputs(stats: dict[str, Any], results: list[dict], E: Any, sweep: dict[str, Any],
                   out_dir: str | Path | None, json_path: str | Path | None, ann: str | Path | CocoDataset,
                   ds: CocoDataset, conf: float, iou: float, predictor: Predictor) -> dict[str, str]:
    """detections.json (at ``json_path`` if given), and with ``out_dir`` metrics.json, pr_curve.png and
    prf_curve.png there; their paths."""
    from flowdet.metrics.coco_eval import pr_curve_png, pr_curves
    from flowdet.metrics.prf import prf_png
    from flowdet.utils import atomic_write_json

    out = Path(out_dir) if out_dir is not None else Path(str(json_path)).parent
    det_path = Path(json_path) if json_path is not None else out / "detections.json"
    atomic_write_json(det_path, results)
    if out_dir is None:
        return {"detections": str(det_path)}
    atomic_write_json(out / "metrics.json", {
        "metrics": stats, "ann": str(ds.ann_path), "conf": conf, "iou": iou,
        "img_size": list(predictor.img_size), "pr": pr_curves(E)}, indent=2)
    name = dataset_label(ann, ds)
    pr_curve_png(E, out / "pr_curve.png", title=name)
    prf_png(sweep, out / "prf_curve.png", title=f"{name}: P / R / F1 at IoU 0.5")
    return {"detections": str(det_path), "metrics": str(out / "metrics.json"),
            "pr_curve": str(out / "pr_curve.png"), "prf_curve": str(out / "prf_curve.png")}
