"""Which model a graph is, and how its outputs become detections: flowdet's own layout and
ultralytics' ONNX detect exports (torch-free; shared by every backend that reads an ONNX graph).

=====================  ==============================  ==========================================
layout                 outputs                         preprocessing / decoding
=====================  ==============================  ==========================================
``flowdet``            ``boxes`` [B, N, 4] xyxy,       flowdet letterbox (top-left, BGR, 0–255);
                       ``scores`` [B, N, C]            NMS + ``/ r`` in flowdet.core.postprocess
``ultralytics-raw``    one [B, 4+nc, N]: cx, cy, w, h  ultralytics letterbox (centred, pad 114,
                       in input pixels, then nc class  RGB, 0–1, bilinear); class = argmax, NMS
                       scores (already sigmoid; no     here; boxes un-padded and divided by the
                       objectness)                     per-axis resize gain
``ultralytics-e2e``    one [B, N, 6]: x1, y1, x2, y2,  same preprocessing; no NMS (the graph's
                       score, class                    one-to-one head / embedded NMS did it)
=====================  ==============================  ==========================================

YOLOv8 / YOLO11 exports and YOLO26 as ultralytics 8.4.190 exports it by default (metadata
``end2end: False``) are ``ultralytics-raw``; ``export(nms=False)`` of YOLO26 (``end2end: True``)
and ``export(nms=True)`` of the others are ``ultralytics-e2e``. :func:`detect_layout` decides from
the output shapes and the ``metadata_props`` ultralytics writes (``names``, ``imgsz``, ``stride``,
``task``, ``end2end``, ``args``; Python reprs, read with ``ast.literal_eval``, never ``eval``).

    layout = detect_layout({"output0": [1, 5, 2100]}, props, "m.onnx", input_shape=[1, 3, 320, 320])
    batch, tfs = preprocess(images, layout.meta.img_size, layout)
    dets = decode_outputs([graph(batch)], layout, tfs, [im.shape[:2] for im in images])
"""
from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from flowdet.core.boxes import clip_xyxy
from flowdet.core.defaults import PAD_VALUE
from flowdet.core.detections import Detections
from flowdet.core.letterbox import preprocess_batch
from flowdet.core.nms import batched_nms
from flowdet.core.postprocess import candidates, postprocess, valid_outputs
from flowdet.errors import ModelFileError
from flowdet.runtime.predict.metadata import ModelMeta

FLOWDET, ULTRA_RAW, ULTRA_E2E = "flowdet", "ultralytics-raw", "ultralytics-e2e"
ULTRA_LETTERBOX = {"align": "center", "pad": PAD_VALUE, "color": "RGB", "range": [0, 1], "layout": "NCHW",
                   "dtype": "float32", "interpolation": "linear"}
SUPPORTED = ("flowdet (boxes [B, N, 4] + scores [B, N, C], written by `flowdet export`), ultralytics detect "
             "raw [B, 4+nc, N] or end-to-end [B, N, 6]")


@dataclass(frozen=True)
class Layout:
    """What the runtime needs to run a graph: its kind, the model contract, the output it reads."""

    kind: str
    meta: ModelMeta
    output: str | None = None  # the one output a foreign layout decodes (flowdet: boxes + scores)


@dataclass(frozen=True)
class Transform:
    """How one image went into the input: ``input = original * gain + pad`` per axis."""

    gain_x: float
    gain_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0

    def unmap(self, boxes: np.ndarray, h: int, w: int) -> np.ndarray:
        """xyxy in input pixels → xyxy in the original image, clipped to it."""
        b = (boxes - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)) \
            / np.array([self.gain_x, self.gain_y, self.gain_x, self.gain_y], np.float32)
        return clip_xyxy(b, w, h).astype(np.float32)


def _literal(props: Mapping[str, str], key: str, source: str) -> Any:
    """An ultralytics metadata value: a Python repr (``{0: 'car'}``, ``[640, 640]``, ``True``) or json."""
    text = props[key]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ModelFileError(f"metadata field '{key}' = {text[:60]!r} is not a literal", path=source) from None


def is_ultralytics(props: Mapping[str, str]) -> bool:
    return "flowdet_format" not in props and (props.get("author") == "Ultralytics"
                                              or {"names", "imgsz", "stride"} <= set(props))


def ultralytics_meta(props: Mapping[str, str], source: str) -> tuple[ModelMeta, dict[str, Any]]:
    """ultralytics ``metadata_props`` → (ModelMeta, the parsed fields). Only detect models are accepted."""
    task = props.get("task", "detect")
    if task != "detect":
        raise ModelFileError(f"an ultralytics '{task}' model; the flowdet runtime runs detect models only",
                             path=source)
    missing = [k for k in ("names", "imgsz") if k not in props]
    if missing:
        raise ModelFileError(f"ultralytics metadata lacks {', '.join(missing)}", path=source)
    names = _literal(props, "names", source)
    if isinstance(names, dict):
        try:
            names = [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise ModelFileError(f"metadata field 'names' has non-integer keys: {list(names)[:5]}", path=source) from None
    if not isinstance(names, list) or not names:
        raise ModelFileError("metadata field 'names' is not a class list or {id: name} dict", path=source)
    size = _literal(props, "imgsz", source)
    size = [size, size] if isinstance(size, int) else size
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ModelFileError(f"metadata field 'imgsz' = {props['imgsz']!r} is not [H, W]", path=source)
    args = _literal(props, "args", source) if "args" in props else {}
    args = args if isinstance(args, dict) else {}
    end2end = str(props.get("end2end", "False")).strip().lower() == "true"
    stride = int(props["stride"]) if str(props.get("stride", "")).isdigit() else 32
    meta = ModelMeta(names=[str(n) for n in names], cat_ids=list(range(1, len(names) + 1)),
                     img_size=(int(size[0]), int(size[1])), strides=[stride], model_size="ultralytics",
                     dynamic_batch=bool(args.get("dynamic", False)), precision="fp16" if args.get("half") else "fp32",
                     flowdet_version=f"ultralytics {props.get('version', 'unknown')}", letterbox=dict(ULTRA_LETTERBOX))
    return meta, {"end2end": end2end, "nms": args.get("nms") is True, "args": args}


def _unknown(source: str, shapes: Mapping[str, Sequence], why: str = "") -> ModelFileError:
    desc = ", ".join(f"{n} {list(s)}" for n, s in shapes.items()) or "none"
    return ModelFileError(f"unknown output layout{' (' + why + ')' if why else ''}: outputs {desc}; "
                          f"the runtime reads {SUPPORTED}", path=source)


def _dim(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def detect_layout(output_shapes: Mapping[str, Sequence], metadata: Mapping[str, str], source: str,
                  input_shape: Sequence | None = None) -> Layout:
    """Recognise the graph from its outputs (name → shape; symbolic dims as str/None) and metadata.

    flowdet's own layout stays the default: any graph with flowdet metadata or ``boxes``/``scores``
    outputs goes through :meth:`ModelMeta.from_props` (and its errors). Anything else that is not an
    ultralytics detect export is one :class:`ModelFileError` naming the file and the shapes."""
    names = list(output_shapes)
    if "flowdet_format" in metadata or names[:2] == ["boxes", "scores"]:
        return Layout(FLOWDET, ModelMeta.from_props(dict(metadata), source=source))
    if not is_ultralytics(metadata):
        why = "no flowdet metadata (export it with `flowdet export`) and no ultralytics metadata"
        raise _unknown(source, output_shapes, why)
    meta, info = ultralytics_meta(metadata, source)
    nc = len(meta.names)
    if not names:
        raise _unknown(source, output_shapes)
    out, shape = names[0], list(output_shapes[names[0]] or [])
    if len(shape) != 3:
        raise _unknown(source, output_shapes, f"'{out}' is not rank 3")
    d1, d2 = _dim(shape[1]), _dim(shape[2])
    e2e_meta = info["end2end"] or info["nms"]
    if d2 == 6 and (e2e_meta or d1 != 4 + nc):
        kind = ULTRA_E2E
    elif d1 == 4 + nc:
        kind = ULTRA_RAW
    elif d1 is None and d2 is None:  # fully symbolic: only the metadata can say
        kind = ULTRA_E2E if e2e_meta else ULTRA_RAW
    else:
        raise _unknown(source, output_shapes, f"{nc} classes in the metadata fit neither [B, {4 + nc}, N] "
                                              f"nor [B, N, 6]")
    if input_shape is not None:
        ishape = list(input_shape)
        if len(ishape) != 4 or _dim(ishape[1]) not in (None, 3):
            raise ModelFileError(f"input shape {ishape} is not [B, 3, H, W]", path=source)
        hw = [_dim(v) for v in ishape[2:]]
        if all(hw) and tuple(hw) != tuple(meta.img_size):
            raise ModelFileError(f"metadata imgsz {list(meta.img_size)} differs from the graph input {hw}",
                                 path=source)
    return Layout(kind, meta, out)


def letterbox_centered(img: np.ndarray, size: tuple[int, int],
                       pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Transform]:
    """ultralytics' letterbox (predict mode, fixed shape): scale by ``r = min(H/h, W/w)`` (up or down),
    resize bilinearly to ``round(w·r) × round(h·r)`` (each ≥ 1), centre on a 114 canvas with the odd
    padding pixel at the bottom/right. The transform uses the rounded size's own gains, as
    ultralytics' ``scale_boxes`` does when it maps boxes back."""
    th, tw = size
    h, w = img.shape[:2]
    r = min(th / h, tw / w)
    nw, nh = max(int(round(w * r)), 1), max(int(round(h * r)), 1)
    top, left = int(round((th - nh) / 2 - 0.1)), int(round((tw - nw) / 2 - 0.1))
    canvas = np.full((th, tw, 3), pad_value, dtype=np.uint8)
    canvas[top:top + nh, left:left + nw] = (cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
                                            if (nh, nw) != (h, w) else img)
    return canvas, Transform(nw / w, nh / h, float(left), float(top))


def preprocess(images: list[np.ndarray], img_size: tuple[int, int],
               layout: Layout | None) -> tuple[np.ndarray, list[Transform]]:
    """BGR uint8 images → ([B, 3, H, W] float32 input, one Transform per image) for the layout."""
    if layout is None or layout.kind == FLOWDET:
        batch, ratios = preprocess_batch(images, img_size)
        return batch, [Transform(r, r) for r in ratios]
    outs, tfs = [], []
    for im in images:
        canvas, tf = letterbox_centered(im, img_size)
        # BGR → RGB, [3, H, W], 0–1: the float32 division ultralytics' predictor does.
        outs.append(np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1)).astype(np.float32) / np.float32(255))
        tfs.append(tf)
    return np.stack(outs), tfs


def _select(boxes: np.ndarray, scores: np.ndarray, conf: float, iou: float, max_det: int,
            max_candidates: int = 30000) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Best class per box, score > conf (strictly, as ultralytics), invalid outputs dropped and
    counted (flowdet.core.postprocess.valid_outputs), the top ``max_candidates``, class-aware NMS,
    at most ``max_det``. → (boxes, scores, classes, invalid)."""
    cls = scores.argmax(axis=1)
    best = scores[np.arange(scores.shape[0]), cls]
    m = candidates(best, conf, strict=True)
    ok = valid_outputs(boxes[m], best[m])
    invalid, m = int(ok.size - ok.sum()), m[ok]
    if m.size > max_candidates:
        m = m[np.argsort(-best[m], kind="stable")[:max_candidates]]
    b, s, c = boxes[m], best[m], cls[m]
    if b.shape[0]:
        keep = batched_nms(b, s, c, iou)[:max_det]
        b, s, c = b[keep], s[keep], c[keep]
    return b, s, c, invalid


def decode_outputs(outputs: Sequence[np.ndarray], layout: Layout | None, transforms: Sequence[Transform],
                   orig_sizes: Sequence[tuple[int, int]], conf: float = 0.25, iou: float = 0.65,
                   max_det: int = 1000) -> list[Detections]:
    """The graph's outputs for a batch (in the order the backend ran them: flowdet ``boxes, scores``;
    a foreign layout its one output) → per-image :class:`Detections` in original pixels
    (``orig_sizes`` are (h, w))."""
    if layout is None or layout.kind == FLOWDET:
        boxes, scores = outputs[0], outputs[1]
        return postprocess(boxes, scores, [t.gain_x for t in transforms], list(orig_sizes), conf_thr=conf,
                           iou_thr=iou, max_det=max_det)
    out = np.asarray(outputs[0], np.float32)
    results = []
    for i, tf in enumerate(transforms):
        if layout.kind == ULTRA_RAW:
            p = out[i].T  # [N, 4 + nc]
            xy, half = p[:, :2], p[:, 2:4] / 2
            b, s, c, invalid = _select(np.concatenate([xy - half, xy + half], axis=1), p[:, 4:], conf, iou, max_det)
        else:  # ULTRA_E2E: rows already ranked by the graph's top-k
            p = out[i]
            keep = candidates(p[:, 4], conf, strict=True)
            ok = valid_outputs(p[keep, :4], p[keep, 4], p[keep, 5].round(), len(layout.meta.names))
            invalid, keep = int(ok.size - ok.sum()), keep[ok][:max_det]
            b, s, c = p[keep, :4], p[keep, 4], p[keep, 5].round()
        h, w = orig_sizes[i]
        results.append(Detections(tf.unmap(b, h, w), s.astype(np.float32), c.astype(np.int64), invalid))
    return results
