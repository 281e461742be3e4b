"""The PyTorch backend of :class:`flowdet.runtime.predict.predictor.Predictor`: a checkpoint or an in-memory model.

Its own module (not ``predict.py``) so that ``flowdet.runtime.load_predictor("x.pt")`` can reach it
without ``predict`` and the runtime importing each other. torch is imported when a TorchPredictor is
made, so importing this module stays cheap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flowdet.core.detections import Detections
from flowdet.core.letterbox import preprocess_batch
from flowdet.core.postprocess import postprocess
from flowdet.core.size import InputSize


class TorchPredictor:
    """A trained checkpoint (EMA weights when present) behind the Predictor interface."""

    def __init__(self, path: str | Path | None = None, img_size: int | str | tuple[int, int] | None = None,
                 device: str = "auto",
                 *, model: Any = None, names: list[str] | None = None, cat_ids: list[int] | None = None,
                 max_det: int = 1000):
        from flowdet.detect.io import model_from_checkpoint

        if model is None:
            if path is None:
                raise ValueError("TorchPredictor needs a checkpoint path or a model")
            model, meta = model_from_checkpoint(path)
            names, cat_ids = meta["names"], meta["cat_ids"]
            trained = tuple(int(v) for v in meta["img_size"])
            from flowdet.detect.io import stored_best_conf

            found = stored_best_conf(meta)
        else:
            trained, found = (640, 640), None
        # the best-F1 threshold of the checkpoint's own evaluation: predict's default --conf
        self.best_conf: float | None = found[0] if found is not None else None
        self.best_conf_from = found[1] if found is not None else ""
        from flowdet.devices import torch_device

        self.device = torch_device(device)
        self.model = model.to(self.device).eval()
        self.names = list(names) if names is not None else [f"class{i}" for i in range(model.num_classes)]
        self.cat_ids = list(cat_ids) if cat_ids is not None else list(range(1, len(self.names) + 1))
        # the checkpoint's own size is checked too: the file may come from anywhere
        self.img_size: tuple[int, int] = InputSize.parse(img_size if img_size else list(trained),
                                                        "--img-size" if img_size else f"{path}: img_size")
        self.max_det = max_det

    @classmethod
    def from_model(cls, model: Any, names: list[str], cat_ids: list[int], img_size: int | tuple[int, int],
                   device: str = "cpu") -> TorchPredictor:  # the trainer passes its own device
        """Wrap an in-memory model (the trainer's EMA) without copying or fusing it."""
        return cls(None, img_size, device, model=model, names=names, cat_ids=cat_ids)

    def predict(self, images: list[np.ndarray], conf: float = 0.25, iou: float = 0.65) -> list[Detections]:
        import torch

        batch, ratios = preprocess_batch(images, self.img_size)
        with torch.inference_mode():
            boxes, scores = self.model.predict(torch.from_numpy(batch).to(self.device))
        return postprocess(boxes.float().cpu().numpy(), scores.float().cpu().numpy(), ratios,
                           [im.shape[:2] for im in images], conf_thr=conf, iou_thr=iou, max_det=self.max_det)
