"""Procedural water and floating objects for the synthetic FloW-like scenes (numpy + cv2 only).

Geometry: a pinhole camera above a flat water plane. A screen row ``y`` below the horizon ``hz`` sees
the water at perspective factor ``p = (y - hz) / (H - hz)`` (1 at the bottom row, → 0 at the
horizon). Ground coordinates are in "bottom-row pixels": lateral ``u = (x - cx) / p`` and depth
``v = (H - hz) / (p · tilt)``, where ``tilt`` (sin of the camera's depression angle) foreshortens the
plane vertically. Everything — ripples, objects, their drift — lives on that plane, so waves and
objects shrink toward the horizon consistently.

Water: one tileable ripple field per scene made by spectral synthesis (filtered white noise in the
Fourier domain: three wavelength bands, wind-directional), animated with the deep-water dispersion
``ω = sqrt(k)`` for video. It is sampled through the perspective map with a small blur pyramid chosen
per row by the texel footprint (so distant water is smooth instead of aliased noise), then shaded:
body colour → sky colour with a Schlick-like Fresnel term toward the horizon, slope shading, cloud
reflections, the mirrored river bank, and sun glints where slopes peak inside the sun's path.
Water is computed at half resolution and resized: it is smooth, and that keeps 1280×720 fast.

Objects are drawn at full resolution with analytic anti-aliasing: a bottle is a solid of revolution
described by its radius profile ``R(a)`` along its axis, so "inside" is ``|b| < R(a)`` in the
object's (a, b) frame — no polygon rasterising or supersampling needed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

TEX = 256          # ripple texture size (texels, tileable)
LEVELS = 4         # blur pyramid levels for distance filtering
WATER_SCALE = 2    # water is rendered at 1/WATER_SCALE resolution


@dataclass
class Camera:
    width: int
    height: int
    horizon: float     # y of the horizon in pixels (negative: above the frame)
    tilt: float        # vertical foreshortening of the water plane, (0, 1]
    cx: float          # x of the vanishing point

    def p_of_y(self, y: np.ndarray | float) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.horizon) / (self.height - self.horizon)

    def project(self, u: float, v: float) -> tuple[float, float, float]:
        """Ground (u, v) → screen (x, y, p)."""
        p = (self.height - self.horizon) / (v * self.tilt)
        return self.cx + u * p, self.horizon + p * (self.height - self.horizon), p

    def unproject(self, x: float, y: float) -> tuple[float, float]:
        p = float(self.p_of_y(y))
        return (x - self.cx) / p, (self.height - self.horizon) / (p * self.tilt)


@dataclass
class WaterStyle:
    body: np.ndarray        # [3] BGR 0–255, the water's own colour (seen near the camera)
    sky: np.ndarray         # [3] sky colour at the horizon (reflected at grazing angles)
    sky_top: np.ndarray     # [3] sky colour at the top of the frame
    bank: np.ndarray | None  # [3] river-bank colour, None for open water
    bank_height: float      # bank strip height as a fraction of H
    ripple_gain: float      # strength of slope shading
    tex_scale: float        # texels per bottom-row pixel (smaller = longer waves)
    sun_x: float | None     # x of the sun's glint path, None when overcast
    sun_width: float        # half-width of the glint path at the bottom row (px)
    glint_threshold: float  # shade (in std units) above which a glint appears
    spectrum: np.ndarray    # [TEX, TEX] complex128, ripple amplitudes × slope operator
    glitter: np.ndarray     # [TEX, TEX] complex128, capillary ripples that make sun glints
    omega: np.ndarray       # [TEX, TEX] angular frequency per component (rad/s)
    clouds: np.ndarray      # [gh, gw] float32, low-frequency reflection pattern
    bank_noise: np.ndarray  # [gh, gw] float32, texture of the bank
    bank_profile: np.ndarray  # [96] float32, tree-line top edge of the bank (fraction of its height)


def _pick(rng: np.random.Generator, table: list) -> np.ndarray:
    return np.asarray(table[int(rng.integers(len(table)))], dtype=np.float32)


WATER_BODIES = [(62, 88, 84), (70, 96, 104), (52, 78, 66), (88, 100, 96), (60, 74, 92), (96, 92, 72), (78, 84, 60)]
SKIES = [(232, 214, 196), (214, 210, 206), (238, 226, 214), (190, 196, 200), (210, 222, 236)]
BANKS = [(40, 66, 52), (46, 74, 70), (36, 52, 44), (70, 96, 110), (58, 80, 76)]


@functools.lru_cache(maxsize=1)
def _frequency_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kx, ky, |k|, direction) of the TEX×TEX FFT grid, in cycles per texel."""
    f = np.fft.fftfreq(TEX)
    kx, ky = np.meshgrid(f, f)
    return kx, ky, np.hypot(kx, ky) + 1e-9, np.arctan2(ky, kx)


def _unit_std(spectrum: np.ndarray) -> np.ndarray:
    """Scale so the real part of ifft2(spectrum) has about unit std (Parseval; no FFT needed:
    a non-Hermitian random spectrum puts half of the energy into the real part)."""
    energy = float(np.sum(np.abs(spectrum) ** 2)) / (2 * TEX ** 4)
    return spectrum / max(np.sqrt(energy), 1e-12)


def sample_water(rng: np.random.Generator, cam: Camera) -> WaterStyle:
    """A random water look: colours, ripple spectrum, sun, clouds, bank."""
    kx, ky, k, direction = _frequency_grid()
    wind = rng.uniform(0, np.pi)
    spread = np.abs(np.cos(direction - wind)) ** rng.uniform(1.0, 4.0)
    # Three bands (wavelengths in texels): swell, chop, capillary ripples — the multi-scale look.
    amp = np.zeros_like(k)
    for wavelength, weight in ((rng.uniform(40, 90), 1.0), (rng.uniform(14, 26), rng.uniform(0.5, 0.8)),
                               (rng.uniform(6, 10), rng.uniform(0.25, 0.45))):
        amp += weight * np.exp(-0.5 * (np.log(k * wavelength) / 0.35) ** 2)
    amp *= 0.3 + 0.7 * spread
    # Slope toward the camera (d/dv) dominates what the eye sees, plus a bit of lateral slope. The
    # operator keeps only the direction (not the usual factor k), so long waves stay visible far away.
    slope_op = 1j * (ky + 0.35 * kx) / k
    noise = rng.standard_normal((TEX, TEX)) + 1j * rng.standard_normal((TEX, TEX))
    spectrum = _unit_std(noise * amp * slope_op)
    # Glitter comes from the capillary ripples only: a separate fine field, thresholded later.
    fine = np.exp(-0.5 * (np.log(k * rng.uniform(3.5, 6)) / 0.3) ** 2) * (0.5 + 0.5 * spread)
    glitter = _unit_std((rng.standard_normal((TEX, TEX)) + 1j * rng.standard_normal((TEX, TEX))) * fine)
    omega = np.sqrt(2 * np.pi * k) * rng.uniform(6.0, 10.0)  # deep water: ω ∝ sqrt(k)

    has_bank = cam.horizon > 0 and rng.random() < 0.8
    sunny = rng.random() < 0.6
    return WaterStyle(
        body=_pick(rng, WATER_BODIES) * rng.uniform(0.9, 1.1, 3).astype(np.float32),
        sky=_pick(rng, SKIES), sky_top=_pick(rng, SKIES) * np.float32(0.85),
        bank=_pick(rng, BANKS) if has_bank else None, bank_height=float(rng.uniform(0.03, 0.10)),
        ripple_gain=float(rng.uniform(0.12, 0.25)), tex_scale=float(rng.uniform(0.35, 0.8)),
        sun_x=float(rng.uniform(0.1, 0.9) * cam.width) if sunny else None,
        sun_width=float(rng.uniform(0.05, 0.2) * cam.width),
        glint_threshold=float(rng.uniform(1.9, 2.6)),
        spectrum=spectrum, glitter=glitter, omega=omega,
        clouds=rng.standard_normal((4, 7)).astype(np.float32),
        bank_noise=rng.standard_normal((40, 160)).astype(np.float32),
        bank_profile=np.convolve(rng.uniform(0.55, 1.0, 96 + 4), np.ones(5) / 5, "valid").astype(np.float32))


def ripple_pyramid(style: WaterStyle, t: float) -> list[np.ndarray]:
    """Ripple texture at time t and its blurred levels: LEVELS × [TEX, TEX, 3] float32 channels
    (slope shading, its quadrature — used to distort reflections —, capillary glitter)."""
    phase = np.exp(1j * style.omega * t) if t else 1.0
    field = np.fft.ifft2(style.spectrum * phase)
    glitter = np.fft.ifft2(style.glitter * phase).real
    tex = np.dstack([field.real, field.imag, glitter]).astype(np.float32)
    levels = [tex]
    pad = 16
    for lvl in range(1, LEVELS):
        # Wrap-pad then blur keeps the texture tileable (GaussianBlur has no BORDER_WRAP).
        padded = np.pad(tex, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
        sigma = 0.8 * 2 ** (lvl - 1)
        levels.append(cv2.GaussianBlur(padded, (0, 0), sigma)[pad:-pad, pad:-pad])
    return levels


def _smooth_grid(grid: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def render_water(cam: Camera, style: WaterStyle, t: float = 0.0, flow: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The background (sky, bank, water) as [H, W, 3] float32 BGR 0–255.

    ``flow`` shifts the ripple field on the ground plane (texels), for a current in a video."""
    W, H = cam.width, cam.height
    w2, h2 = max(8, W // WATER_SCALE), max(8, H // WATER_SCALE)
    sy = H / h2
    ys = (np.arange(h2, dtype=np.float64) + 0.5) * sy                     # full-res y of each low-res row
    xs = ((np.arange(w2, dtype=np.float64) + 0.5) * (W / w2)).astype(np.float32)
    p = cam.p_of_y(ys)                                                     # increases down the frame
    first = int(np.searchsorted(p, 0.5 / (H - cam.horizon), side="right"))  # rows [first:] are water
    bank_top = np.zeros(w2, np.float32)
    if style.bank is not None and cam.horizon > 0:
        bank_top = (cam.horizon - style.bank_height * H
                    * np.interp(np.linspace(0, 95, w2), np.arange(96), style.bank_profile)).astype(np.float32)
    img = np.empty((h2, w2, 3), np.float32)
    if first > 0:
        img[:first] = _sky(style, ys[:first], w2, h2, cam.horizon, bank_top)
    if first < h2:
        img[first:] = _water(cam, style, t, flow, ys[first:], xs, p[first:], sy)
    np.clip(img, 0, 255, out=img)
    return cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)


def _sky(style: WaterStyle, ys: np.ndarray, w2: int, h2: int, horizon: float, bank_top: np.ndarray) -> np.ndarray:
    """Rows above the horizon: sky gradient and the river-bank strip. [len(ys), w2, 3]."""
    a = np.clip(ys / max(horizon, 1.0), 0, 1).astype(np.float32)[:, None, None]
    sky = np.broadcast_to(style.sky_top * (1 - a) + style.sky * a, (len(ys), w2, 3))
    if style.bank is None:
        return sky
    tex = _smooth_grid(style.bank_noise, w2, h2)[: len(ys), :, None]
    return np.where((ys[:, None] >= bank_top[None, :])[..., None], style.bank * (1 + 0.25 * tex), sky)


def _water(cam: Camera, style: WaterStyle, t: float, flow: tuple[float, float], ys: np.ndarray, xs: np.ndarray,
           pc: np.ndarray, sy: float) -> np.ndarray:
    """Rows below the horizon (perspective factors ``pc`` > 0): [len(ys), len(xs), 3]."""
    H = cam.height
    rows, w2 = len(ys), len(xs)
    # Perspective map into the texture (u lateral, v depth), wrapped into [0, TEX).
    u = (xs[None, :] - cam.cx) / pc[:, None] * style.tex_scale + flow[0]
    v = (H - cam.horizon) / (pc * cam.tilt) * style.tex_scale + flow[1]
    map_x = np.mod(u, TEX).astype(np.float32)
    map_y = np.ascontiguousarray(np.broadcast_to(np.mod(v, TEX).astype(np.float32)[:, None], (rows, w2)))
    # Texels covered by one low-res pixel, per row: picks the blur level (no distant aliasing).
    footprint = style.tex_scale * sy * np.maximum(1 / pc, 1 / (pc * pc * cam.tilt))
    level = np.clip(np.log2(np.maximum(footprint, 1.0)), 0, LEVELS - 1)
    fade = (1.0 / np.sqrt(np.maximum(footprint / 2 ** (LEVELS - 1), 1.0))).astype(np.float32)[:, None]

    pyramid = ripple_pyramid(style, t)
    shade = np.zeros((rows, w2, 3), np.float32)
    for i, tex in enumerate(pyramid):
        weight = np.clip(1 - np.abs(level - i), 0, 1).astype(np.float32)
        used = np.nonzero(weight)[0]  # level is monotonic in the row, so this is one band of rows
        if used.size:
            r0, r1 = used[0], used[-1] + 1
            shade[r0:r1] += weight[r0:r1, None, None] * cv2.remap(tex, map_x[r0:r1], map_y[r0:r1], cv2.INTER_LINEAR,
                                                                  borderMode=cv2.BORDER_WRAP)
    s, q = shade[..., 0] * fade, shade[..., 1] * fade

    # Colour: water body near the camera → reflected sky toward the horizon (Fresnel).
    fres = (0.05 + 0.95 * (1 - np.clip(pc, 0, 1)) ** 4).astype(np.float32)[:, None, None]
    base = style.body * (1 - fres) + style.sky * fres
    clouds = _smooth_grid(style.clouds, w2, rows)[..., None]
    img = base * (1 + style.ripple_gain * s[..., None] + 0.05 * clouds * (0.3 + fres))
    img += 40 * style.ripple_gain * np.maximum(s, 0)[..., None] ** 2 * (0.3 + fres)

    if style.bank is not None and cam.horizon > 0:
        # The mirrored bank: a dark band under the horizon, broken up by the ripples (exp decay:
        # only the rows within a few bank heights matter).
        bank_h = style.bank_height * H
        n = int(np.searchsorted(ys - cam.horizon, 8 * bank_h))
        depth = np.maximum(ys[:n, None] - cam.horizon + 6 * q[:n] * (1 - fres[:n, :, 0]), 0)
        refl = (0.85 * np.exp(-depth / (1.2 * bank_h)))[..., None].astype(np.float32)
        img[:n] = img[:n] * (1 - refl) + style.bank * np.float32(0.8) * refl
    if style.sun_x is not None:
        # Glitter: unfiltered capillary peaks inside the sun's path (that is where real glitter
        # reaches the horizon), distance-filtered ones elsewhere (only near the camera).
        sharp = cv2.remap(pyramid[0][..., 2], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        width = (style.sun_width * (0.25 + pc)).astype(np.float32)[:, None]
        path = np.exp(-(((xs[None, :] - np.float32(style.sun_x)) / width) ** 2))
        peaks = path * sharp + (1 - path) * shade[..., 2]
        glint = np.clip(peaks - np.float32(style.glint_threshold), 0, None)
        img += (255 * np.minimum(glint * 1.5, 1.0))[..., None]
    return img


# --------------------------------------------------------------------------- floating objects

BOTTLE_COLORS = [(228, 222, 205), (215, 230, 236), (60, 150, 45), (35, 80, 140), (245, 245, 245),
                 (210, 130, 40), (45, 45, 205), (40, 205, 235), (30, 130, 240), (180, 60, 150)]
CAP_COLORS = [(200, 90, 20), (245, 245, 245), (40, 40, 210), (40, 160, 40), (25, 25, 25), (30, 200, 240)]
LEAF_COLORS = [(40, 90, 80), (30, 60, 95), (45, 110, 110), (35, 70, 60), (50, 95, 125)]
FOAM_COLORS = [(200, 205, 205), (185, 195, 200), (175, 190, 195)]


@dataclass
class Thing:
    """One floating thing on the ground plane (sizes in bottom-row pixels; colours BGR 0–255)."""

    kind: str            # bottle | capsule | ellipse (labelled) ; leaf | twig | foam (distractors)
    u: float
    v: float
    length: float
    width: float
    heading: float       # angle on the water plane (rad)
    body: tuple
    cap: tuple
    label: tuple | None  # colour of a label band, None for none
    alpha: float         # opacity of the body (clear plastic < 1)
    waterline: float     # across-axis level above which the body is under water (1 = dry)
    light: float         # +1/-1: which side the highlight is on
    bob_phase: float = 0.0
    bob_freq: float = 0.5
    vel_u: float = 0.0   # drift (bottom-row px per second)
    vel_v: float = 0.0
    track_id: int = 0

    @property
    def labelled(self) -> bool:
        return self.kind in ("bottle", "capsule", "ellipse")


def _profile(kind: str, length: float, r: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Radius profile (a points, R points) along the axis a ∈ [-L/2, L/2], and where the cap starts."""
    h = length / 2
    eps = 1e-3  # np.interp needs increasing points; eps-steps make the sharp cap/tail edges
    quarter = np.linspace(0, np.pi / 2, 6)
    if kind == "bottle":
        neck_r, cap_len = 0.45 * r, 0.12 * length
        a = np.concatenate([-h + 0.5 * r * (1 - np.cos(quarter)),
                            [0.25 * length, 0.36 * length, h - cap_len, h - cap_len + eps, h, h + eps]])
        R = np.concatenate([r * np.sin(quarter), [r, neck_r, neck_r, 1.15 * neck_r, 1.15 * neck_r, 0]])
        return a, R, h - cap_len
    if kind == "capsule":
        end = min(r, h)
        tail = -h + end * (1 - np.cos(quarter))
        a = np.concatenate([tail, -tail[::-1]])
        R = np.concatenate([r * np.sin(quarter), r * np.sin(quarter)[::-1]])
        return a, R, h + 1
    if kind == "ellipse":
        cap_len = 0.14 * length
        body = np.linspace(-h, h - cap_len, 12)
        # The ellipse ends under the cap (not at it) so the cap sits on a neck, not on a point.
        centre, half = -0.15 * cap_len, h - 0.15 * cap_len
        R = r * np.sqrt(np.clip(1 - ((body - centre) / half) ** 2, 0, 1))
        return (np.concatenate([body, [h - cap_len + eps, h, h + eps]]),
                np.concatenate([R, [0.5 * r, 0.5 * r, 0]]), h - cap_len)
    # leaf / twig: pointed at both ends
    a = np.linspace(-h, h, 12)
    return a, r * np.sin(np.pi * (a / length + 0.5)) ** 0.8, h + 1


def draw_thing(img: np.ndarray, thing: Thing, x: float, y: float, length: float, width: float,
               angle: float, waterline: float) -> tuple[float, float, float, float] | None:
    """Alpha-blend one thing into ``img`` ([H, W, 3] float32, in place) centred at (x, y) with the
    given screen length/width (px) and angle. Returns the visible box (x1, y1, x2, y2) or None."""
    H, W = img.shape[:2]
    ext = int(np.ceil(max(length, width) / 2 + 2))
    x0, y0 = int(np.floor(x)) - ext, int(np.floor(y)) - ext
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + 2 * ext + 2, W), min(y0 + 2 * ext + 2, H)
    if xa >= xb or ya >= yb:
        return None
    gy, gx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
    dx, dy = gx + 0.5 - x, gy + 0.5 - y
    ca, sa = np.cos(angle), np.sin(angle)
    a = dx * ca + dy * sa           # along the axis
    b = -dx * sa + dy * ca          # across the axis
    patch = img[ya:yb, xa:xb]

    if thing.kind == "foam":
        blob = np.exp(-0.5 * ((a / (0.35 * length)) ** 2 + (b / (0.35 * width)) ** 2))
        alpha = (thing.alpha * np.clip(1.6 * blob - 0.25, 0, 1))[..., None]
        patch[:] = patch * (1 - alpha) + np.asarray(thing.body, np.float32) * alpha
        return None

    r = width / 2
    pa, pr, cap_start = _profile(thing.kind, length, r)
    R = np.interp(a, pa, pr).astype(np.float32)
    cover = np.clip(R - np.abs(b) + 0.5, 0, 1)           # analytic 1-px anti-aliasing
    rim = np.clip(R - np.abs(b) + 1.5, 0, 1) - cover       # a thin dark wet edge / shadow
    nb = np.clip(b / np.maximum(R, 1e-3), -1, 1)           # -1..1 across the body
    col = np.empty(patch.shape, np.float32)
    col[:] = np.asarray(thing.body, np.float32)
    if thing.label is not None:
        band = (np.abs(a + 0.05 * length) < 0.16 * length)[..., None]
        col = np.where(band, np.asarray(thing.label, np.float32), col)
    col = np.where((a > cap_start)[..., None], np.asarray(thing.cap, np.float32), col)
    if thing.kind in ("leaf", "twig"):
        col *= (1 - 0.35 * (np.abs(b) < 0.12 * r + 0.3))[..., None]   # darker mid-rib
        shade, spec = 1 - 0.15 * thing.light * nb, 0.0
    else:
        shade = 0.8 - 0.3 * thing.light * nb                          # cylinder lit from one side
        spec = 0.75 * np.exp(-(((nb + 0.45 * thing.light) / 0.22) ** 2))  # specular stripe
    col = col * shade[..., None] + 255 * (spec[..., None] if np.ndim(spec) else spec)
    alpha = cover * thing.alpha
    under = nb > waterline                                  # the submerged side: faint, water-tinted
    alpha = np.where(under, alpha * 0.4, alpha)
    col = np.where(under[..., None], 0.5 * col + 0.5 * patch, col)
    patch[:] = patch * (1 - 0.45 * rim[..., None])                     # darken the rim
    patch[:] = patch * (1 - alpha[..., None]) + np.clip(col, 0, 255) * alpha[..., None]

    visible = alpha >= 0.3
    if not visible.any():
        return None
    rows, cols = np.nonzero(visible.any(axis=1))[0], np.nonzero(visible.any(axis=0))[0]
    return float(xa + cols[0]), float(ya + rows[0]), float(xa + cols[-1] + 1), float(ya + rows[-1] + 1)


def screen_pose(thing: Thing, cam: Camera, t: float = 0.0) -> tuple[float, float, float, float, float, float, float]:
    """Where a thing appears at time t: (x, y, p, screen length, width, angle, waterline)."""
    u = thing.u + thing.vel_u * t
    v = thing.v + thing.vel_v * t
    x, y, p = cam.project(u, v)
    bob = np.sin(2 * np.pi * thing.bob_freq * t + thing.bob_phase)
    heading = thing.heading + 0.08 * bob
    # A thing lying on the water: its axis is foreshortened, its thickness (a cylinder) is not.
    dx, dy = np.cos(heading), np.sin(heading) * cam.tilt
    stretch = float(np.hypot(dx, dy))
    y += 0.6 * p * bob
    waterline = float(np.clip(thing.waterline + 0.15 * bob, -0.2, 1.0))
    return x, y, p, thing.length * p * stretch, thing.width * p, float(np.arctan2(dy, dx)), waterline
