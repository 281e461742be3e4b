"""The one `flowdet predict` loop: image or folder → drawings, results json, jsonl.

``predict_source`` works over any :class:`flowdet.runtime.predictor.Predictor` (PyTorch, ONNX,
TensorRT), so `flowdet predict model.onnx` runs on the core, torch-free install. The PyTorch
backend is :class:`flowdet.detect.torch_predictor.TorchPredictor`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from flowdet.data.draw import draw_detections
from flowdet.errors import DataError, InputError
from flowdet.runtime.predictor import Predictor

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(source: str | Path) -> list[Path]:
    """An image file, or the images of a folder (sorted, not recursive)."""
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() not in IMAGE_EXTS:
            raise DataError(f"{p}: not an image ({', '.join(IMAGE_EXTS)})")
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise DataError(f"{p}: no images in this folder ({', '.join(IMAGE_EXTS)})")
        return files
    raise DataError(f"{p}: no such file or folder")


def _batches(files: list[Path], batch: int) -> Iterator[list[tuple[Path, np.ndarray]]]:
    import cv2

    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{f}: cannot read image")
        out.append((f, img))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def predict_source(predictor: Predictor, source: str | Path, out_dir: str | Path, conf: float = 0.25,
                   iou: float = 0.65, batch: int = 1, draw: bool = True, progress: bool = True) -> dict:
    """Run on an image or folder. Writes ``out_dir``/{annotated images, results.json (COCO results,
    image_id = 1-based file order, with "file_name"), detections.jsonl (one line per image)}."""
    import cv2
    from tqdm import tqdm

    from flowdet.utils import atomic_write_json

    files = list_images(source)
    out = Path(out_dir)
    if draw and any(f.parent.resolve() == out.resolve() for f in files[:1]):
        raise InputError(f"{out}: --out is the source folder; drawings would overwrite the images")
    out.mkdir(parents=True, exist_ok=True)
    cat_ids = getattr(predictor, "cat_ids", None) or list(range(1, len(predictor.names) + 1))
    results: list[dict] = []
    n_det, image_id = 0, 0
    jsonl_tmp = out / ".detections.jsonl.tmp"
    with jsonl_tmp.open("w") as jf, tqdm(total=len(files), desc="predict", unit="img", disable=not progress) as bar:
        for chunk in _batches(files, max(1, batch)):
            dets = predictor.predict([im for _, im in chunk], conf=conf, iou=iou)
            for (f, img), d in zip(chunk, dets):
                image_id += 1
                for r in d.to_coco(image_id, cat_ids):
                    results.append({**r, "file_name": f.name})
                n_det += len(d)
                jf.write(json.dumps({
                    "file": str(f), "width": int(img.shape[1]), "height": int(img.shape[0]),
                    "boxes": [[round(float(v), 2) for v in b] for b in d.boxes],
                    "scores": [round(float(s), 4) for s in d.scores],
                    "class_ids": [int(c) for c in d.class_ids],
                }) + "\n")
                if draw:
                    vis = draw_detections(img, d.boxes, d.scores, d.class_ids, predictor.names)
                    cv2.imwrite(str(out / f.name), vis)
                bar.update(1)
    jsonl_tmp.replace(out / "detections.jsonl")
    atomic_write_json(out / "results.json", results)
    return {"images": len(files), "detections": n_det, "out": str(out),
            "results": str(out / "results.json"), "jsonl": str(out / "detections.jsonl")}
