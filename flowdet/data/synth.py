"""Synthetic FloW-like scenes: small floating bottles on procedural water, with COCO ground truth.

The demo's and the tests' embedded dataset (no download). ``generate(out_dir, SynthConfig(...))``
writes::

    out_dir/images/000001.jpg …          JPEG (quality cfg.jpeg_quality), BGR scenes
    out_dir/annotations.json              COCO: one category {"id": 1, "name": "bottle"};
                                          bbox = tight box of the visible object, integer pixels
    out_dir/video.mp4                     only with video_seconds > 0 (see flowdet.data.synth_video)
    out_dir/video_annotations.json        per-frame COCO ground truth of the video

Labelled objects are bottle-like (bottles with neck and cap, capsules, capped ellipses; several
colours, clear plastic, labels, highlights, partly submerged), placed on the water plane so their
size follows perspective. Their on-screen length is drawn from ``[min_size, max_size]`` (log-uniform,
so most are small) plus a ``near_fraction`` tail up to ``2·max_size``. Distractors — leaves, twigs,
foam, and the water's own sun glints — are never labelled.

Determinism: every random number comes from ``np.random.default_rng([seed, index])`` (one stream per
image, so image k does not depend on how many images are made), JPEG quality is fixed, json is
written with sorted keys and no timestamps: the same config gives byte-identical files.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet.data.synth_scene import (
    CATEGORY,
    SynthConfig,
    coco_info,
    render_scene,
    sample_scene,
    size_buckets,
    write_json_sorted,
)
from flowdet.errors import FlowdetError

__all__ = ["SynthConfig", "generate"]  # the stage's Python API: generate(out_dir, SynthConfig(...))


def generate(out_dir: str | Path, cfg: SynthConfig, progress: bool = False) -> dict[str, Any]:
    """Write ``cfg.num_images`` scenes (+ the video when ``cfg.video_seconds > 0``) under ``out_dir``.

    Returns a summary: {"images", "boxes", "small", "medium", "large", "small_share",
    "images_without_boxes", "annotations" (path), "images_dir", "video" (path or None),
    "video_annotations", "video_frames", "video_boxes", "seconds"}.
    """
    cfg.validate()
    t0 = time.perf_counter()
    out = Path(out_dir)
    images_dir = out / "images"
    from flowdet.core import validate

    validate.writable_dir(images_dir, "OUT_DIR")
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    indices: Any = range(cfg.num_images)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synth images", unit="img", disable=None)
    for i in indices:
        rng = np.random.default_rng([cfg.seed, i])
        cam, style, things = sample_scene(rng, cfg)
        img, labels = render_scene(cam, style, things, rng)
        name = f"{i + 1:06d}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        if not ok:
            raise FlowdetError(f"{images_dir / name}: JPEG encoding failed")
        (images_dir / name).write_bytes(buf.tobytes())
        images.append({"id": i + 1, "file_name": name, "width": cfg.width, "height": cfg.height})
        for box, _ in labels:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": CATEGORY["id"], "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
    ann_path = out / "annotations.json"
    write_json_sorted(ann_path, {"info": coco_info(cfg, "images"), "images": images, "annotations": anns,
                                 "categories": [CATEGORY]})
    with_boxes = {a["image_id"] for a in anns}
    summary: dict[str, Any] = {"images": len(images), "boxes": len(anns),
                               **size_buckets([a["area"] for a in anns]),
                               "images_without_boxes": len(images) - len(with_boxes),
                               "annotations": str(ann_path), "images_dir": str(images_dir),
                               "video": None, "video_annotations": None, "video_frames": 0, "video_boxes": 0}
    if cfg.video_seconds > 0:
        from flowdet.data.synth_video import render_video

        summary.update(render_video(out, cfg, progress=progress))
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
