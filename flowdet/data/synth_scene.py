"""The scenes behind ``flowdet synth``: config, sampling, rendering and the COCO bits both outputs share.

``flowdet.data.synth`` (images) and ``flowdet.data.synth_video`` (the video) both build on this
module; it imports neither, so they do not import each other. See ``flowdet.data.synth`` for what
is generated and how determinism is kept.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flowdet.data.synth_render import (
    BOTTLE_COLORS,
    CAP_COLORS,
    FOAM_COLORS,
    LEAF_COLORS,
    Camera,
    Thing,
    WaterStyle,
    draw_thing,
    render_water,
    sample_water,
    screen_pose,
)
from flowdet.errors import InputError

CATEGORY = {"id": 1, "name": "bottle", "supercategory": "debris"}
SMALL_AREA, MEDIUM_AREA = 32 ** 2, 96 ** 2   # COCO size buckets (box area in pixels)


@dataclass
class SynthConfig:
    """What to generate. Sizes are on-screen object lengths in pixels of the output resolution."""

    num_images: int = 100
    width: int = 1280
    height: int = 720
    seed: int = 0
    video_seconds: float = 0.0
    fps: float = 10.0
    min_size: float = 8.0
    max_size: float = 30.0
    near_fraction: float = 0.1            # share of objects between max_size and 2·max_size
    objects_per_image: tuple[int, int] = (3, 12)
    distractors_per_image: tuple[int, int] = (2, 8)
    empty_fraction: float = 0.05          # images with water and distractors only
    jpeg_quality: int = 90

    def validate(self) -> SynthConfig:
        """Raise a one-line InputError naming the bad field."""
        checks = [
            ("num_images", self.num_images >= 0), ("width", self.width >= 64), ("height", self.height >= 64),
            ("video_seconds", self.video_seconds >= 0), ("fps", self.fps > 0),
            ("min_size", 2 <= self.min_size <= self.max_size), ("max_size", self.max_size <= min(self.width, self.height) / 3),
            ("near_fraction", 0 <= self.near_fraction <= 1), ("empty_fraction", 0 <= self.empty_fraction <= 1),
            ("objects_per_image", 0 <= self.objects_per_image[0] <= self.objects_per_image[1]),
            ("distractors_per_image", 0 <= self.distractors_per_image[0] <= self.distractors_per_image[1]),
            ("jpeg_quality", 1 <= self.jpeg_quality <= 100),
        ]
        for name, ok in checks:
            if not ok:
                raise InputError(f"synth config: invalid {name}={getattr(self, name)!r}")
        from flowdet.core.imread import max_pixels
        from flowdet.core.validate import seed

        seed(self.seed, "--seed")  # numpy refuses a negative seed with a traceback
        if self.width * self.height > max_pixels():  # frames flowdet's own reader would refuse (and minutes each)
            raise InputError(f"synth config: {self.width}x{self.height} is {self.width * self.height / 1e6:.0f} MP, over "
                             f"the {max_pixels() / 1e6:g} MP image limit (FLOWDET_MAX_PIXELS)", field="--size")
        return self


def sample_camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    """Boat camera: horizon from above the frame (looking down) to 30% down; varied tilt and yaw."""
    return Camera(width, height, horizon=float(height * rng.uniform(-0.25, 0.3)),
                  tilt=float(rng.uniform(0.35, 0.75)), cx=float(width * rng.uniform(0.35, 0.65)))


def _object_length(rng: np.random.Generator, lo: float, hi: float, near_fraction: float) -> float:
    if rng.random() < near_fraction:
        return float(rng.uniform(hi, 2 * hi))
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_thing(rng: np.random.Generator, cam: Camera, cfg: SynthConfig, kind: str,
                 taken: list[tuple[float, float, float, float]]) -> Thing | None:
    """A thing of ``kind`` placed on visible water, not overlapping ``taken`` (screen boxes, appended)."""
    W, H = cam.width, cam.height
    if kind == "foam":
        length, ratio = float(rng.uniform(1.2, 4) * cfg.min_size), float(rng.uniform(0.4, 1.0))
    elif kind == "twig":
        length, ratio = float(rng.uniform(1.0, 2.5) * cfg.min_size), float(rng.uniform(0.08, 0.14))
    elif kind == "leaf":
        length, ratio = _object_length(rng, 0.6 * cfg.min_size, 0.6 * cfg.max_size, 0.0), float(rng.uniform(0.35, 0.5))
    else:
        length = _object_length(rng, cfg.min_size, cfg.max_size, cfg.near_fraction)
        ratio = float({"bottle": rng.uniform(0.28, 0.38), "capsule": rng.uniform(0.32, 0.45),
                       "ellipse": rng.uniform(0.45, 0.65)}[kind])
    heading = float(rng.uniform(0, 2 * np.pi))
    stretch = float(np.hypot(np.cos(heading), cam.tilt * np.sin(heading)))
    # Perspective consistency: a thing of real length B (bottom-row px) at factor p shows B·p·stretch.
    # Bound B to a plausible range, which bounds where on the water this screen length may sit.
    b_lo, b_hi = 0.4 * cfg.max_size, 8 * cfg.max_size
    margin = length / 2 + 2
    p_top = max(float(cam.p_of_y(margin)), 0.03)        # the thing stays whole inside the frame
    p_bottom = max(float(cam.p_of_y(H - margin)), p_top)
    p_lo = float(np.clip(length / (stretch * b_hi), p_top, p_bottom))
    p_hi = float(np.clip(length / (stretch * b_lo), p_lo, p_bottom))
    for _ in range(20):
        p = float(rng.uniform(p_lo, p_hi))
        y = cam.horizon + p * (H - cam.horizon)
        x = float(rng.uniform(margin, W - margin))
        box = (x - margin, y - margin, x + margin, y + margin)
        if any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
            continue
        taken.append(box)
        u, v = cam.unproject(x, y)
        return _dress(rng, kind, u, v, length / (p * stretch), ratio * length / p, heading)
    return None


def _dress(rng: np.random.Generator, kind: str, u: float, v: float, length: float, width: float, heading: float) -> Thing:
    """Colours and material of a thing."""
    light = float(rng.choice([-1.0, 1.0]))
    common = dict(kind=kind, u=u, v=v, length=length, width=width, heading=heading, light=light,
                  bob_phase=float(rng.uniform(0, 2 * np.pi)), bob_freq=float(rng.uniform(0.3, 0.9)))
    if kind == "foam":
        return Thing(body=tuple(FOAM_COLORS[int(rng.integers(len(FOAM_COLORS)))]), cap=(0, 0, 0), label=None,
                     alpha=float(rng.uniform(0.25, 0.45)), waterline=1.0, **common)
    if kind in ("leaf", "twig"):
        body = tuple(LEAF_COLORS[int(rng.integers(len(LEAF_COLORS)))])
        return Thing(body=body, cap=body, label=None, alpha=float(rng.uniform(0.8, 0.95)),
                     waterline=float(rng.uniform(0.3, 1.0)), **common)
    ci = int(rng.integers(len(BOTTLE_COLORS)))
    clear = ci < 2  # the first two colours are clear plastic: see-through with strong highlights
    label = None
    if kind != "ellipse" and rng.random() < 0.5:
        label = tuple(BOTTLE_COLORS[int(rng.integers(len(BOTTLE_COLORS)))])
    waterline = 1.0 if rng.random() < 0.3 else float(rng.uniform(0.0, 0.8))
    return Thing(body=tuple(BOTTLE_COLORS[ci]), cap=tuple(CAP_COLORS[int(rng.integers(len(CAP_COLORS)))]),
                 label=label, alpha=float(rng.uniform(0.7, 0.85) if clear else rng.uniform(0.92, 1.0)),
                 waterline=waterline, **common)


def sample_scene(rng: np.random.Generator, cfg: SynthConfig, n_objects: int | None = None) -> tuple[Camera, WaterStyle, list[Thing]]:
    """A camera, a water look and the floating things (labelled and distractors) of one scene."""
    cam = sample_camera(rng, cfg.width, cfg.height)
    style = sample_water(rng, cam)
    if n_objects is None:
        empty = rng.random() < cfg.empty_fraction
        n_objects = 0 if empty else int(rng.integers(cfg.objects_per_image[0], cfg.objects_per_image[1] + 1))
    n_distract = int(rng.integers(cfg.distractors_per_image[0], cfg.distractors_per_image[1] + 1))
    kinds = list(rng.choice(["bottle", "capsule", "ellipse"], size=n_objects, p=[0.6, 0.2, 0.2]))
    kinds += list(rng.choice(["leaf", "twig", "foam"], size=n_distract, p=[0.5, 0.2, 0.3]))
    taken: list = []
    things = [t for k in kinds if (t := sample_thing(rng, cam, cfg, str(k), taken)) is not None]
    for i, t in enumerate(things):
        t.track_id = i + 1
    return cam, style, things


def render_scene(cam: Camera, style: WaterStyle, things: list[Thing], rng: np.random.Generator, t: float = 0.0,
                 flow: tuple[float, float] = (0.0, 0.0), grain: float = 2.0) -> tuple[np.ndarray, list[tuple[list[float], int]]]:
    """Render at time t → (image [H, W, 3] uint8 BGR, [(xywh box, track id)] of visible labelled things)."""
    img = render_water(cam, style, t, flow)
    labels = []
    # Far to near, so nearer things cover farther ones.
    for thing in sorted(things, key=lambda th: -(th.v + th.vel_v * t)):
        x, y, p, length, width, angle, waterline = screen_pose(thing, cam, t)
        if p <= 0 or length < 1.0:
            continue
        box = draw_thing(img, thing, x, y, length, width, angle, waterline)
        inside = 0 <= x < cam.width and 0 <= y < cam.height  # ≥ about half visible
        if thing.labelled and box is not None and inside and min(box[2] - box[0], box[3] - box[1]) >= 2:
            labels.append(([box[0], box[1], box[2] - box[0], box[3] - box[1]], thing.track_id))
    if grain > 0:  # sensor noise at full resolution, so the upscaled water is not unnaturally clean
        # A random 128² tile repeated (at a random offset): same look, a fraction of the cost.
        tile = rng.standard_normal((128, 128), dtype=np.float32) * np.float32(grain)
        H, W = img.shape[:2]
        reps = (-(-H // 128) + 1, -(-W // 128) + 1)
        oy, ox = (int(v) for v in rng.integers(0, 128, 2))
        img += np.tile(tile, reps)[oy:oy + H, ox:ox + W, None]
    img += 0.5  # round, not truncate, in the uint8 cast
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8), labels


def size_buckets(areas: list[float] | np.ndarray) -> dict[str, Any]:
    a = np.asarray(areas, dtype=np.float64)
    small, medium = int((a < SMALL_AREA).sum()), int(((a >= SMALL_AREA) & (a < MEDIUM_AREA)).sum())
    return {"small": small, "medium": medium, "large": int(a.size - small - medium),
            "small_share": float(small / a.size) if a.size else 0.0}


def coco_info(cfg: SynthConfig, what: str) -> dict[str, Any]:
    from flowdet import __version__

    return {"description": f"flowdet synthetic FloW-like scenes ({what})", "flowdet_version": __version__,
            "synth_config": dataclasses.asdict(cfg)}


def write_json_sorted(path: Path, obj: Any) -> None:
    from flowdet.utils import atomic_write_text

    atomic_write_text(path, json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")
