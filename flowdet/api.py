"""The Python API, reading like the CLI: ``Detector.load(...).predict(...)`` and ``train(...)``.

    >>> from flowdet import Detector, train
    >>> summary = train(data="splits/train.json", val="splits/val.json", epochs=100, out="runs/train")
    >>> model = Detector.load(summary["best"])            # a .pt, or an exported .onnx / .xml / .engine
    >>> for r in model.predict("frames/"):                # an image, a folder, a glob or BGR arrays
    ...     print(r.path, len(r), r.boxes, r.scores, r.labels)
    ...     r.save(f"runs/pred/{r.path.name}")
    >>> r.to_coco()

Both are thin: ``Detector`` is a :class:`flowdet.runtime.predict.predictor.Predictor` (the backend chosen by
the file, as ``flowdet predict`` does) plus :class:`Results`; ``train`` builds the same config
``flowdet train`` builds from its flags and keeps the same run-folder rule. Importing this module
does not import torch (an ``.onnx`` runs on the core install).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flowdet.errors import DataError


@dataclass
class Results:
    """One image's detections, in its own pixels: ``boxes`` [K, 4] xyxy, ``scores`` [K],
    ``class_ids`` [K] (index into ``names``)."""

    image: np.ndarray  # the BGR pixels predicted on
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str]
    cat_ids: list[int]
    path: Path | None = None  # the file, when the source was one
    conf: float = 0.25  # the score threshold applied
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.scores))

    @property
    def labels(self) -> list[str]:
        """The class name of each box."""
        return [self.names[int(c)] for c in self.class_ids]

    def plot(self) -> np.ndarray:
        """A copy of the image with the boxes, names and scores drawn (BGR, as OpenCV writes it)."""
        from flowdet.core.draw import draw_detections

        return draw_detections(self.image, self.boxes, self.scores, self.class_ids, self.names)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`plot` to ``path`` (an image file; its folder is made)."""
        import cv2

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(p), self.plot()):
            raise DataError("cannot write the annotated image (an image suffix such as .jpg? disk full?)", path=p)
        return p

    def to_coco(self, image_id: int | str | None = None) -> list[dict]:
        """COCO result entries (bbox [x, y, w, h], score, category_id as the training json's);
        ``image_id`` defaults to the file stem (an int when numeric), as ``flowdet predict`` writes."""
        from flowdet.core.detections import Detections

        if image_id is None:
            stem = self.path.stem if self.path is not None else "0"
            image_id = int(stem) if stem.isdigit() else stem
        dets = Detections(self.boxes, self.scores, self.class_ids)
        return [{**r, "image_id": image_id} for r in dets.to_coco(0, list(self.cat_ids))]


class Detector:
    """A trained detector from any file flowdet writes: best.pt / last.pt (PyTorch), model.onnx,
    an OpenVINO .xml or a TensorRT .engine."""

    def __init__(self, predictor: Any, path: str | Path):
        self.predictor, self.path = predictor, Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", img_size: int | str | None = None,
             backend: str | None = None, threads: int | None = None) -> Detector:
        """The backend follows the file (``.onnx`` → ONNX Runtime, torch-free); arguments as the CLI's flags."""
        from flowdet.errors import ModelFileError
        from flowdet.runtime.predict.predictor import load_predictor

        if not Path(path).is_file():
            raise ModelFileError("model file not found", path=path)
        return cls(load_predictor(str(path), img_size=img_size, device=device, threads=threads, backend=backend), path)

    @property
    def names(self) -> list[str]:
        return list(self.predictor.names)

    @property
    def conf(self) -> float:
        """The default score threshold: the best-F1 one the model stores, else 0.25 (as `flowdet predict`)."""
        from flowdet.runtime.predict.predictor import default_conf

        return default_conf(self.predictor)[0]

    def predict(self, source: str | Path | np.ndarray | Iterable[np.ndarray], conf: float | None = None,
                iou: float = 0.65, recursive: bool = False) -> list[Results]:
        """Detect in an image file, a folder, a glob ("frames/*.jpg"), a BGR array or a list of
        arrays; one :class:`Results` per image, in order. ``conf`` None: :attr:`conf`."""
        from flowdet.core import validate

        threshold = self.conf if conf is None else float(conf)
        validate.predict_args(threshold, iou, 1)
        images = list(_images(source, recursive))
        cat_ids = list(getattr(self.predictor, "cat_ids", None) or range(1, len(self.names) + 1))
        out = []
        for path, img in images:
            d = self.predictor.predict([img], conf=threshold, iou=iou)[0]
            out.append(Results(img, d.boxes, d.scores, d.class_ids, self.names, cat_ids, path, threshold))
        return out

    def __repr__(self) -> str:
        return f"Detector({self.path}, classes={self.names})"


def _images(source: Any, recursive: bool) -> Iterable[tuple[Path | None, np.ndarray]]:
    if isinstance(source, np.ndarray):
        yield None, _checked_array(source)
        return
    if isinstance(source, (str, Path)):
        from flowdet.core.imread import read_image
        from flowdet.detect.predict import list_images

        for f in list_images(source, recursive):
            yield f, read_image(f)
        return
    for item in source:
        if not isinstance(item, np.ndarray):
            raise DataError(f"predict takes a path, a BGR array or a list of arrays, got a list holding {type(item).__name__}")
        yield None, _checked_array(item)


def _checked_array(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"an image array must be H×W×3 uint8 BGR (as cv2.imread gives), got {img.dtype} {img.shape}")
    return img


def train(data: str | Path, *, val: str | Path | None = None, images: str | Path | None = None,
          size: str | None = None, epochs: int | None = None, batch: int | None = None,
          img_size: int | str | None = None, backbone: str | Path | None = None, out: str | Path | None = None,
          device: str | None = None, exist_ok: bool = False, config: str | Path | None = None,
          overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``flowdet train`` as a call: the same recipe, checks and run-folder rule (a used ``out``
    becomes ``out2`` unless ``exist_ok``). ``overrides``: any config key (`flowdet cfg train`),
    e.g. ``{"train.lr": 0.02, "augment.mosaic_prob": 0}``. Returns the run summary: "run_dir",
    "best" (best.pt), "last", "best_ap", "metrics", ….

    ``data``/``val``: COCO json, YOLO data.yaml (its val split validates), VOC or YOLO folder."""
    import dataclasses

    from flowdet.detect.config import validate
    from flowdet.detect.recipes import load_detect_config
    from flowdet.detect.train import train as run_train
    from flowdet.runs import increment_path

    given = {"data.train": data, "data.val": val, "data.images": images, "model.size": size, "train.epochs": epochs,
             "train.batch": batch, "train.img_size": img_size, "model.backbone": backbone, "out": out,
             "train.device": device}
    sets = [f"{k}={_yaml_value(v)}" for k, v in {**given, **(overrides or {})}.items() if v is not None]
    cfg, recipe = load_detect_config(str(config) if config else None, sets)
    validate(cfg)
    cfg = dataclasses.replace(cfg, out=str(increment_path(cfg.out, exist_ok, claim=True)))
    origin = f"recipe '{recipe}'" if recipe else (f"config {config}" if config else "defaults")
    return run_train(cfg, origin=origin)


def _yaml_value(v: Any) -> str:
    """An override's value as the ``--set KEY=VALUE`` text the config loader parses (YAML)."""
    import json

    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple, dict, bool)) or v is None:
        return json.dumps(list(v) if isinstance(v, tuple) else v)
    return str(v)
