"""The metadata contract stored inside ``model.onnx`` (``metadata_props``, all values strings).

The runtime reads only this, so a deployed model needs no checkpoint, config or repo. Keys:

=================  ==========================================================================
``flowdet_format``  contract version ("1")
``names``          json list of class names (class id = index = argmax over ``scores``)
``cat_ids``        json list of COCO category ids, same order as ``names``
``img_size``       json [H, W] of the ``images`` input
``strides``        json list of head strides, e.g. [8, 16, 32]
``letterbox``      json {"align": "top-left", "pad": 114, "color": "BGR", "range": [0, 255],
                   "layout": "NCHW", "dtype": "float32"} (see flowdet/core/letterbox.py)
``outputs``        json description of ``boxes`` / ``scores``
``model_size``     "nano" | "tiny" | "s" | "m"
``dynamic_batch``  "true" | "false"
``precision``      "fp32" | "fp16" (weights; the ``images``/outputs stay float32)
``flowdet_version``  version of the exporter
``best_conf``      optional: the best-F1 score threshold of the checkpoint's evaluation (json number);
                   predict uses it when no ``--conf`` is given
``best_conf_from`` optional: where ``best_conf`` comes from, in words
=================  ==========================================================================
A TensorRT engine cannot hold these, so ``export --format engine`` writes them to
``<engine>.json`` next to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowdet.core.defaults import PAD_VALUE
from flowdet.errors import ModelFileError

FORMAT_VERSION = "1"
LETTERBOX = {"align": "top-left", "pad": PAD_VALUE, "color": "BGR", "range": [0, 255], "layout": "NCHW", "dtype": "float32"}
OUTPUTS = {
    "boxes": "[B, N, 4] xyxy in letterboxed input pixels (divide by the letterbox ratio for original pixels)",
    "scores": "[B, N, C] objectness x class probability; class id = argmax, NMS in flowdet.core.postprocess",
}


@dataclass
class ModelMeta:
    names: list[str]
    cat_ids: list[int]
    img_size: tuple[int, int]
    strides: list[int] = field(default_factory=lambda: [8, 16, 32])
    model_size: str = "unknown"
    dynamic_batch: bool = False
    precision: str = "fp32"
    flowdet_version: str = "unknown"
    letterbox: dict[str, Any] = field(default_factory=lambda: dict(LETTERBOX))
    best_conf: float | None = None  # the best-F1 threshold of training's evaluation: predict's default --conf
    best_conf_from: str = ""

    def to_props(self) -> dict[str, str]:
        best = {} if self.best_conf is None else {"best_conf": json.dumps(round(float(self.best_conf), 6)),
                                                  "best_conf_from": self.best_conf_from}
        return {**best,
            "flowdet_format": FORMAT_VERSION,
            "names": json.dumps(self.names),
            "cat_ids": json.dumps([int(c) for c in self.cat_ids]),
            "img_size": json.dumps([int(s) for s in self.img_size]),
            "strides": json.dumps([int(s) for s in self.strides]),
            "letterbox": json.dumps(self.letterbox),
            "outputs": json.dumps(OUTPUTS),
            "model_size": self.model_size,
            "dynamic_batch": "true" if self.dynamic_batch else "false",
            "precision": self.precision,
            "flowdet_version": self.flowdet_version,
        }

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMeta:
        """Parse ``metadata_props``; a missing or malformed field is a one-line user error."""
        if "names" not in props or "img_size" not in props:
            raise ModelFileError(
                f"{source}: no flowdet metadata (names/img_size) in the model; export it with `flowdet export`")

        def field_json(key: str, default: Any = None) -> Any:
            if key not in props:
                return default
            try:
                return json.loads(props[key])
            except json.JSONDecodeError:
                raise ModelFileError(f"{source}: metadata field '{key}' is not valid json") from None

        names = field_json("names")
        size = field_json("img_size")
        if not isinstance(names, list) or not (isinstance(size, list) and len(size) == 2):
            raise ModelFileError(f"{source}: metadata fields 'names'/'img_size' are malformed")
        lb = field_json("letterbox", dict(LETTERBOX))
        from flowdet.core import validate

        validate.model_meta({"names": names, "img_size": size, "cat_ids": field_json("cat_ids"), "letterbox": lb,
                             "strides": field_json("strides"), **{k: props[k] for k in ("dynamic_batch", "precision")
                                                                  if k in props}}, source)
        best = field_json("best_conf")
        if best is not None and not (isinstance(best, (int, float)) and not isinstance(best, bool) and 0 <= best <= 1):
            raise ModelFileError(f"{source}: metadata field 'best_conf' must be a number in [0, 1], got {best!r}"[:200])
        if lb.get("align") != "top-left" or lb.get("color") != "BGR" or lb.get("pad", -1) != PAD_VALUE:
            # The runtime implements exactly one preprocessing; refuse a model that expects another.
            raise ModelFileError(f"{source}: metadata field 'letterbox' = {lb} is not the flowdet contract")
        return cls(
            names=[str(n) for n in names],
            cat_ids=[int(c) for c in field_json("cat_ids", list(range(1, len(names) + 1)))],
            img_size=(int(size[0]), int(size[1])),
            strides=[int(s) for s in field_json("strides", [8, 16, 32])],
            model_size=props.get("model_size", "unknown"),
            dynamic_batch=props.get("dynamic_batch", "false") == "true",
            precision=props.get("precision", "fp32"),
            flowdet_version=props.get("flowdet_version", "unknown"),
            letterbox=lb,
            best_conf=None if best is None else float(best),
            best_conf_from=props.get("best_conf_from", ""),
        )


def sidecar_path(engine: str | Path) -> Path:
    """Where the metadata of a TensorRT engine lives (``model.engine`` → ``model.engine.json``)."""
    return Path(str(engine) + ".json")


def write_sidecar(engine: str | Path, meta: ModelMeta) -> Path:
    from flowdet.utils import atomic_write_json

    p = sidecar_path(engine)
    atomic_write_json(p, meta.to_props(), indent=2)
    return p


def read_sidecar(engine: str | Path) -> ModelMeta:
    p = sidecar_path(engine)
    if not p.is_file():
        raise ModelFileError(f"{p}: engine metadata not found (written by `flowdet export --format engine`)")
    try:
        props = json.loads(p.read_text())
    except json.JSONDecodeError:
        raise ModelFileError(f"{p}: not valid json") from None
    return ModelMeta.from_props({k: str(v) for k, v in props.items()}, source=str(p))
