"""PyTorch predictor and the one `flowdet predict` loop (image or folder → drawings, results json, jsonl).

``TorchPredictor`` implements :class:`flowdet.predictor.Predictor`; ``predict_source`` works over any
predictor, so `flowdet predict model.onnx` shares it. torch is imported lazily (only by
TorchPredictor): the ONNX path of this module runs on the core, torch-free install.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import click
import numpy as np

from flowdet.data.draw import draw_detections
from flowdet.data.letterbox import preprocess_batch
from flowdet.ops.postprocess import Detections, postprocess
from flowdet.predictor import Predictor

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class TorchPredictor:
    """A trained checkpoint (EMA weights when present) behind the Predictor interface."""

    def __init__(self, path: str | Path | None = None, img_size: int | None = None, device: str = "cpu",
                 *, model: Any = None, names: list[str] | None = None, cat_ids: list[int] | None = None,
                 max_det: int = 1000):
        import torch

        from flowdet.detect.io import model_from_checkpoint

        if model is None:
            if path is None:
                raise ValueError("TorchPredictor needs a checkpoint path or a model")
            model, meta = model_from_checkpoint(path)
            names, cat_ids = meta["names"], meta["cat_ids"]
            trained = tuple(int(v) for v in meta["img_size"])
        else:
            trained = (640, 640)
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
        self.model = model.to(self.device).eval()
        self.names = list(names) if names is not None else [f"class{i}" for i in range(model.num_classes)]
        self.cat_ids = list(cat_ids) if cat_ids is not None else list(range(1, len(self.names) + 1))
        self.img_size: tuple[int, int] = (img_size, img_size) if img_size else trained
        from flowdet import validate

        for v in self.img_size:  # a checkpoint's own size too: it may come from anywhere
            validate.img_size(v, "--img-size" if img_size else f"{path}: img_size")
        self.max_det = max_det

    @classmethod
    def from_model(cls, model: Any, names: list[str], cat_ids: list[int], img_size: int,
                   device: str = "cpu") -> "TorchPredictor":
        """Wrap an in-memory model (the trainer's EMA) without copying or fusing it."""
        return cls(None, img_size, device, model=model, names=names, cat_ids=cat_ids)

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65) -> list[Detections]:
        import torch

        batch, ratios = preprocess_batch(images, self.img_size)
        with torch.inference_mode():
            boxes, scores = self.model.predict(torch.from_numpy(batch).to(self.device))
        return postprocess(boxes.float().cpu().numpy(), scores.float().cpu().numpy(), ratios,
                           [im.shape[:2] for im in images], conf_thr=conf, iou_thr=iou, max_det=self.max_det)


def list_images(source: str | Path) -> list[Path]:
    """An image file, or the images of a folder (sorted, not recursive)."""
    p = Path(source)
    if p.is_file():
        if p.suffix.lower() not in IMAGE_EXTS:
            raise click.ClickException(f"{p}: not an image ({', '.join(IMAGE_EXTS)})")
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise click.ClickException(f"{p}: no images in this folder ({', '.join(IMAGE_EXTS)})")
        return files
    if p.exists():
        from flowdet.errors import DataError

        raise DataError("not a regular file or a folder (not opened)", path=p)
    raise click.ClickException(f"{p}: no such file or folder")


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
    from flowdet.errors import DataError
    from flowdet.utils import atomic_write_json

    validate.predict_args(conf, iou, batch)
    files = list_images(source)
    out = Path(out_dir)
    if draw and any(f.parent.resolve() == out.resolve() for f in files[:1]):
        raise click.ClickException(f"{out}: --out is the source folder; drawings would overwrite the images")
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
        click.echo(f"warning: {skipped.summary()}", err=True)
        if not image_id:
            raise DataError(f"none of the {len(files)} image(s) could be read ({skipped.summary()})", path=source)
    return {"images": image_id, "skipped": len(skipped), "detections": n_det, "out": str(out),
            "results": str(out / "results.json"), "jsonl": str(out / "detections.jsonl")}
