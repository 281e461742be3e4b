"""Synthetic FloW-like video with per-frame COCO ground truth (``flowdet synth --video SECONDS``).

One scene is animated: the ripples evolve (deep-water dispersion) and flow with the current, the boat
moves forward (everything approaches) while the camera pitches and yaws a little, and each object
drifts with the current, bobs, wobbles and dips in and out of the water.

Outputs (in ``out_dir``):
- ``video.mp4`` — MPEG-4 part 2 (OpenCV ``mp4v`` fourcc), ``cfg.fps`` frames per second;
- ``video_annotations.json`` — COCO, one ``images`` entry per frame::

      {"id": k + 1, "file_name": "video.mp4#000123", "video": "video.mp4", "frame_index": 123,
       "width": W, "height": H}

  ``file_name`` = video file name + ``#`` + the zero-based frame index (6 digits), which
  :func:`flowdet.data.coco.load_coco` understands (``ImageRecord.frame_index``). Annotations carry a
  ``track_id`` (the same physical object across frames). An object is labelled in a frame when its
  centre is inside the frame and its visible box is at least 2 px on each side.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from flowdet.data.synth_render import Camera
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

VIDEO_NAME = "video.mp4"
VIDEO_STREAM = 2 ** 31 - 1   # the video's random stream: default_rng([seed, VIDEO_STREAM]), apart from images


def render_video(out_dir: str | Path, cfg: SynthConfig, progress: bool = False) -> dict[str, Any]:
    """Write ``video.mp4`` and ``video_annotations.json`` under ``out_dir``; return a summary dict
    {"video", "video_annotations", "video_frames", "video_boxes", "video_small_share"}."""
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([cfg.seed, VIDEO_STREAM])
    n_objects = int(rng.integers(cfg.objects_per_image[0], cfg.objects_per_image[1] + 1)) + 2
    cam0, style, things = sample_scene(rng, cfg, n_objects=n_objects)

    # Motion, in ground units (bottom-row pixels) per second.
    boat_speed = float(rng.uniform(20, 90))               # the boat moves forward: v decreases
    current = float(rng.uniform(-30, 30))                  # lateral current: u drifts
    for t in things:
        t.vel_u = current + float(rng.normal(0, 6))
        t.vel_v = -boat_speed + float(rng.normal(0, 6))
    pitch_amp, pitch_period = float(rng.uniform(0.005, 0.02) * cfg.height), float(rng.uniform(2.5, 6))
    yaw_amp, yaw_period = float(rng.uniform(0.01, 0.04) * cfg.width), float(rng.uniform(4, 9))
    yaw_drift = float(rng.uniform(-8, 8))                  # px/s slow pan
    phases = rng.uniform(0, 2 * np.pi, 2)

    n_frames = max(1, int(round(cfg.video_seconds * cfg.fps)))
    video_path = out / VIDEO_NAME
    tmp_path = out / f".{VIDEO_NAME}.tmp.mp4"
    writer = cv2.VideoWriter(str(tmp_path), cv2.VideoWriter_fourcc(*"mp4v"), float(cfg.fps), (cfg.width, cfg.height))
    if not writer.isOpened():
        raise FlowdetError(f"{video_path}: OpenCV cannot write mp4v video here (no FFmpeg backend?)")
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    frames: Any = range(n_frames)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="synth video", unit="frame", disable=None)
    try:
        for k in frames:
            t = k / cfg.fps
            cam = Camera(cfg.width, cfg.height,
                         horizon=cam0.horizon + pitch_amp * np.sin(2 * np.pi * t / pitch_period + phases[0]),
                         tilt=cam0.tilt,
                         cx=cam0.cx + yaw_drift * t + yaw_amp * np.sin(2 * np.pi * t / yaw_period + phases[1]))
            flow = (current * t * style.tex_scale, -boat_speed * t * style.tex_scale)
            frame_rng = np.random.default_rng([cfg.seed, VIDEO_STREAM, k])  # grain only
            img, labels = render_scene(cam, style, things, frame_rng, t=t, flow=flow)
            writer.write(img)
            images.append({"id": k + 1, "file_name": f"{VIDEO_NAME}#{k:06d}", "video": VIDEO_NAME,
                           "frame_index": k, "width": cfg.width, "height": cfg.height})
            for box, track in labels:
                anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": CATEGORY["id"], "bbox": box,
                             "area": box[2] * box[3], "iscrowd": 0, "track_id": track})
    finally:
        writer.release()
    os.replace(tmp_path, video_path)
    ann_path = out / "video_annotations.json"
    info = coco_info(cfg, "video") | {"video": VIDEO_NAME, "fps": cfg.fps, "frames": n_frames}
    write_json_sorted(ann_path, {"info": info, "images": images, "annotations": anns, "categories": [CATEGORY]})
    return {"video": str(video_path), "video_annotations": str(ann_path), "video_frames": n_frames,
            "video_boxes": len(anns), "video_small_share": size_buckets([a["area"] for a in anns])["small_share"]}
