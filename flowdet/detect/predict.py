"""The one `flowdet predict` loop: image or folder → drawings, results json, jsonl.

``predict_source`` works over any :class:`flowdet.runtime.predictor.Predictor` (PyTorch, ONNX,
TensorRT), so `flowdet predict model.onnx` runs on the core, torch-free install. The PyTorch
backend is :class:`flowdet.detect.torch_predictor.TorchPredictor`.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from flowdet import log
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
    if p.exists():
        raise DataError("not a regular file or a folder (not opened)", path=p)
    raise DataError(f"{p}: no such file or folder")


def _batches(files: list[Path], batch: int, skipped) -> Iterator[list[tuple[Path, np.ndarray]]]:
    """Chunks of readable images; an unreadable one is logged in ``skipped`` (a SkipLog) and left out."""
    from flowdet.data.imread import ImageReadError, read_image

    out = []
    for f in files:
        try:
            img = read_image(f)
        except ImageReadError as e:
            skipped.add(f, e.reason)
            continue
        out.append((f, img))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def predict_source(predictor: Predictor, source: str | Path, out_dir: str | Path, conf: float = 0.25,
                   iou: float = 0.65, batch: int = 1, draw: bool = True, progress: bool = True) -> dict:
    """Run on an image or folder. Writes ``out_dir``/{annotated images, results.json (COCO results,
    image_id = 1-based file order, with "file_name"), detections.jsonl (one line per image)}.

    An unreadable image (corrupt, truncated, over the pixel cap, not a regular file) is skipped
    with a warning and counted ("skipped" in the summary); detections.jsonl is written line by line
    as images finish, and results.json is written even when the run stops early."""
    import cv2
    from tqdm import tqdm

    from flowdet import validate
    from flowdet.data.imread import SkipLog
    from flowdet.utils import atomic_write_json

    validate.predict_args(conf, iou, batch)
    files = list_images(source)
    out = Path(out_dir)
    if draw and any(f.parent.resolve() == out.resolve() for f in files[:1]):
        raise InputError(f"{out}: --out is the source folder; drawings would overwrite the images")
    validate.writable_dir(out)
    cat_ids = getattr(predictor, "cat_ids", None) or list(range(1, len(predictor.names) + 1))
    results: list[dict] = []
    n_det, image_id = 0, 0
    skipped = SkipLog()
    try:
        with (out / "detections.jsonl").open("w", buffering=1) as jf, \
                tqdm(total=len(files), desc="predict", unit="img", disable=not progress) as bar:
            for chunk in _batches(files, batch, skipped):
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
                        if not cv2.imwrite(str(out / f.name), vis):
                            raise DataError("cannot write the annotated image (disk full or not writable?)",
                                            path=out / f.name)
                bar.update(image_id + len(skipped) - bar.n)
    except BaseException:
        with contextlib.suppress(OSError):  # what finished stays usable after a crash or Ctrl-C
            atomic_write_json(out / "results.json", results)
        raise
    atomic_write_json(out / "results.json", results)
    if skipped:
        log.warn(skipped.summary())
        if not image_id:
            raise DataError(f"none of the {len(files)} image(s) could be read ({skipped.summary()})", path=source)
    return {"images": image_id, "skipped": len(skipped), "detections": n_det, "out": str(out),
            "results": str(out / "results.json"), "jsonl": str(out / "detections.jsonl")}
