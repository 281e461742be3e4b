"""Generators of hostile inputs for the robustness suite. Everything is made here, in a tmp folder,
from a few bytes: no real data is copied. Each function writes one file and returns its path."""
from __future__ import annotations

import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def image(path: Path, w: int = 96, h: int = 64, seed: int = 0) -> Path:
    """A small valid noise image (format from the suffix)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    cv2.rectangle(img, (10, 10), (30, 25), (255, 255, 255), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _jpeg_bytes(w: int = 96, h: int = 64) -> bytes:
    img = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def huge_jpeg(path: Path, w: int = 65000, h: int = 65000) -> Path:
    """A real small JPEG whose SOF header claims w × h (cv2.imread raises cv2.error on it)."""
    b = bytearray(_jpeg_bytes())
    i = b.find(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", h, w)
    path.write_bytes(bytes(b))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with(path: Path, w: int, h: int, idat: bytes) -> Path:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def huge_png(path: Path, side: int = 20000) -> Path:
    """A 400-byte PNG whose IHDR says side × side (decoding it would take 2.4 GB and 13 s)."""
    return png_with(path, side, side, zlib.compress(b"\x00" * 256))


def corrupt_png(path: Path) -> Path:
    """Header and end marker intact, pixel data garbage: only decoding finds it."""
    return png_with(path, 96, 64, b"this is not zlib data" * 8)


def truncated_jpeg(path: Path) -> Path:
    """The first half of a JPEG: cv2 would return it half grey, without an error."""
    b = _jpeg_bytes()
    path.write_bytes(b[: len(b) // 2])
    return path


def garbage(path: Path, n: int = 300) -> Path:
    path.write_bytes(np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def fifo(path: Path) -> Path:
    """A named pipe: opening it for reading blocks until a writer comes (never here)."""
    os.mkfifo(path)
    return path


def deep_json(path: Path, depth: int = 200_000) -> Path:
    path.write_text("[" * depth + "]" * depth)
    return path


class _Marker:
    """Unpickling this creates ``self.path`` (a harmless stand-in for a shell command)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_pt(path: Path, marker: Path, raw: bool = False) -> Path:
    """A .pt whose unpickling would run code (create ``marker``): a torch zip file, or with ``raw``
    a bare pickle (torch's legacy format). It looks like a checkpoint from the outside."""
    payload = {"model_cfg": {"size": "nano", "num_classes": 1}, "model": {}, "state_dict": {},
               "epoch": 0, "rng": _Marker(marker), "config": {"out": str(path.parent)}}
    if raw:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        import torch

        torch.save(payload, path)
    assert not marker.exists()
    return path


def coco(root: Path, n: int = 4, w: int = 96, h: int = 64, boxes: bool = True, name: str = "ann.json",
         images: list[str] | None = None) -> Path:
    """``root/images/im{i}.jpg`` + ``root/<name>`` (one box per image unless ``boxes`` is False)."""
    files = images or [f"im{i}.jpg" for i in range(n)]
    for i, f in enumerate(files):
        if not (root / "images" / f).exists():
            image(root / "images" / f, w, h, seed=i)
    data = {"images": [{"id": i + 1, "file_name": f, "width": w, "height": h} for i, f in enumerate(files)],
            "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [10, 10, 21, 16],
                             "area": 336, "iscrowd": 0} for i in range(len(files))] if boxes else [],
            "categories": [{"id": 1, "name": "bottle"}]}
    (root / name).write_text(json.dumps(data))
    return root / name


def truncated_video(path: Path, frames: int = 40, keep: float = 0.4) -> Path:
    """An MJPG .avi whose header announces ``frames`` but whose data stops after ~``keep`` of them."""
    tmp = path.with_name("full_" + path.name)
    vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        vw.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    vw.release()
    b = tmp.read_bytes()
    path.write_bytes(b[: int(len(b) * keep)])
    tmp.unlink()
    return path


def yaml_bomb(levels: int = 6, width: int = 9) -> str:
    """A one-line flow YAML list of nested anchors ("billion laughs"): ~60 bytes per level that a
    YAML reader expanding aliases turns into ``width ** levels`` strings (9**6: 531,441; printed,
    3.7 MB; levels=9 in a data.yaml was 580 MB of json)."""
    items = ["&a0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(items) + "]"


def voc_xml(path: Path, filename: str, w: int = 96, h: int = 64) -> Path:
    """A VOC xml with one box whose <filename> is ``filename`` (written as given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
                    "<depth>3</depth></size><object><name>bottle</name><difficult>0</difficult><bndbox>"
                    "<xmin>11</xmin><ymin>11</ymin><xmax>30</xmax><ymax>25</ymax></bndbox></object></annotation>")
    return path


def _exif(orientation: int) -> bytes:
    """A big-endian TIFF structure holding one tag: orientation (0x0112)."""
    return b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00" * 4


def oriented(path: Path, orientation: int = 6, w: int = 96, h: int = 64) -> Path:
    """A ``w`` × ``h`` image (format from the suffix: .jpg, .png, .webp) whose EXIF says ``orientation``
    (6: shown turned a quarter clockwise, so ``h`` × ``w``): JPEG APP1, PNG eXIf, WebP VP8X + EXIF."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 4, : w // 4] = 255  # a bright top-left corner: shows where the rotation put it
    ext = path.suffix.lower()
    ok, buf = cv2.imencode(ext, img, [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else [])
    assert ok
    b = buf.tobytes()
    if ext in (".jpg", ".jpeg"):
        app1 = b"Exif\x00\x00" + _exif(orientation)
        b = b[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b[2:]
    elif ext == ".png":
        b = b[:33] + _chunk(b"eXIf", _exif(orientation)) + b[33:]  # right after IHDR (8 + 25 bytes)
    elif ext == ".webp":
        def riff_chunk(kind: bytes, data: bytes) -> bytes:
            return kind + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)

        vp8x = bytes([0x08, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        body = b"WEBP" + riff_chunk(b"VP8X", vp8x) + b[12:] + riff_chunk(b"EXIF", _exif(orientation))
        b = b"RIFF" + struct.pack("<I", len(body)) + body
    else:
        raise ValueError(ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b)
    return path


def onnx_emitting(path: Path, boxes: np.ndarray, scores: np.ndarray, names: list[str], size: int = 64) -> Path:
    """A flowdet-contract ONNX model whose outputs are the given constants, whatever the image:
    ``boxes`` [1, N, 4] (input pixels), ``scores`` [1, N, C] — a stand-in for a broken export."""
    import onnx
    from onnx import helper, numpy_helper

    from flowdet.runtime.predict.metadata import ModelMeta

    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(a, np.float32)))
             for name, a in (("boxes", boxes), ("scores", scores))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", 1, [1, 3, size, size])],
                              [helper.make_tensor_value_info("boxes", 1, list(np.shape(boxes))),
                               helper.make_tensor_value_info("scores", 1, list(np.shape(scores)))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMeta(names=names, cat_ids=list(range(1, len(names) + 1)), img_size=(size, size))
    for k, v in meta.to_props().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


def undecodable_video(path: Path, frames: int = 5) -> Path:
    """An MJPG .avi with an intact header and index whose every frame is zeros: it opens, announces
    ``frames`` frames, and none decodes."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        vw.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    vw.release()
    b = bytearray(path.read_bytes())
    i, end = b.find(b"movi"), b.rfind(b"idx1")  # frame chunks lie between these (the index after)
    while 0 <= (i := b.find(b"00dc", i, end)):
        size = struct.unpack("<I", b[i + 4:i + 8])[0]
        b[i + 8:i + 8 + size] = bytes(size)
        i += 8 + size
    path.write_bytes(bytes(b))
    return path
