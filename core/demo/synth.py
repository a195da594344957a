"""Procedural shots with exact ground-truth alpha, for the demo model, its tests and benchmarks.

A shot is a few textured foreground objects (hard and soft edges, holes, hair strands, thin rigid
wires, motion blur) moving over a camera-panned, defocused background. Everything is rendered in
scene-linear ACEScg, and the foreground is composited with `fg_premult + bg * (1 - alpha)`, so the
alpha written beside the plate is the exact coverage of the foreground in every pixel.

What tells foreground from background (the cues the demo model learns, chosen so they survive the
ACEScg -> display-referred conversion): foreground objects are saturated, textured, shaded and
sharp-edged (or evenly soft-edged), and move on their own paths; the background is desaturated,
lower-contrast, defocused (only low spatial frequencies) and moves with the camera.

Everything is deterministic from the seed: the same seed gives the same pixels on any machine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

import numpy as np

from ..fs import atomic_write
from ..errors import ColourError, OutputError, library_text

WORKING_SPACE = "ACEScg"
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
DEFAULT_CONFIG = "ocio://studio-config-latest"
SHUTTER = 0.5  # fraction of a frame interval the virtual shutter is open (180 degrees)
MAX_SUBSAMPLES = 6  # motion-blur samples per frame, at most
SHAPES = ("ellipse", "box", "blob", "star", "ring")


# ----------------------------------------------------------------------------------------------
# Shot description (random parameters drawn once per shot)


@dataclass
class _Strands:
    """Thin curves rooted on an object's outline: hair (wavy, tapering) or wires (straight)."""

    angles: np.ndarray  # (n,) direction of each strand from the object centre, radians
    lengths: np.ndarray  # (n,) in object pixels
    widths: np.ndarray  # (n,) root width in pixels (below 1 px = partial coverage)
    amps: np.ndarray  # (n,) wave amplitude, pixels
    freqs: np.ndarray  # (n,) wave frequency, radians per pixel
    phases: np.ndarray  # (n,)
    bends: np.ndarray  # (n,) quadratic curl
    root: float  # roots sit at this fraction of the outline radius
    taper: float  # width at the tip relative to the root
    colour: np.ndarray  # (3,) linear ACEScg


@dataclass
class _Object:
    """One foreground object: shape, edge, texture, motion path and optional strands."""

    shape: str
    radius: float  # pixels
    aspect: float
    harmonics: np.ndarray  # (k, 3): order, amplitude, phase for blob/star outlines
    edge_soft: float  # 0 = hard (1 px antialiased) edge, else soft edge width in pixels
    start: np.ndarray  # (2,) centre at t = 0, pixels
    end: np.ndarray  # (2,) centre at the last frame
    wobble: np.ndarray  # (2, 3): amplitude, frequency, phase per axis
    angle0: float
    spin: float  # radians per frame
    pulse: tuple[float, float, float]  # scale amplitude, frequency, phase
    colours: np.ndarray  # (2, 3) the two texture colours, linear
    pattern: str  # "stripes" | "checker" | "noise" | "plain"
    pattern_params: np.ndarray
    light: np.ndarray  # (2,) shading direction
    highlight: np.ndarray  # (3,) x, y (object units) and strength (can exceed 1: HDR)
    strands: list[_Strands] = field(default_factory=list)

    def extent(self) -> float:
        """Largest distance from the centre any covered pixel can have, in pixels."""
        reach = self.radius * max(self.aspect, 1.0 / self.aspect, 1.0) * 1.6
        for s in self.strands:
            reach = max(reach, self.radius * s.root + float(s.lengths.max()) + float(s.amps.max()))
        return reach * (1.0 + abs(self.pulse[0])) + self.edge_soft + 3.0


@dataclass
class _Background:
    """Defocused, camera-panned backdrop: low-frequency fields, soft blobs and soft bars."""

    base: np.ndarray  # (3,)
    tint: np.ndarray  # (3,) second colour the chroma field mixes towards
    waves: np.ndarray  # (k, 4): kx, ky (radians per pixel), phase, amplitude
    chroma_waves: np.ndarray  # (k, 4)
    contrast: float
    pan: np.ndarray  # (2,) pixels per frame
    blobs: np.ndarray  # (n, 7): x, y, sigma, parallax, r, g, b gain
    bars: np.ndarray  # (n, 5): x, width, softness, angle, gain
    grain: float


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """A colour from hue/saturation/value (all 0..1), as linear RGB values."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _saturated_colour(rng: np.random.Generator) -> np.ndarray:
    return _hsv_to_rgb(rng.random(), rng.uniform(0.65, 0.95), rng.uniform(0.35, 0.95))


def _make_strands(rng: np.random.Generator, obj_radius: float, kind: str,
                  colour: np.ndarray) -> _Strands:
    """Hair: many fine wavy tapering strands on one side; wire: a few straight rigid lines."""
    if kind == "hair":
        n = int(rng.integers(10, 28))
        centre, spread = rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.3)
        angles = centre + rng.uniform(-spread, spread, n)
        lengths = obj_radius * rng.uniform(0.35, 0.9, n)
        widths = rng.uniform(0.6, 1.6, n)
        amps = rng.uniform(0.5, 4.0, n)
        freqs = rng.uniform(0.05, 0.25, n)
        bends = rng.uniform(-0.012, 0.012, n)
        root, taper = 0.85, 0.45
        col = colour * rng.uniform(0.25, 0.7) if rng.random() < 0.6 else _saturated_colour(rng)
    else:
        n = int(rng.integers(1, 4))
        angles = rng.uniform(0, 2 * np.pi, n)
        lengths = obj_radius * rng.uniform(0.7, 1.4, n)
        widths = rng.uniform(1.0, 2.5, n)
        amps = np.zeros(n)
        freqs = np.zeros(n)
        bends = np.zeros(n)
        root, taper = 0.3, 1.0
        col = np.full(3, rng.uniform(0.02, 0.08)) if rng.random() < 0.5 else _saturated_colour(rng)
    return _Strands(angles, lengths, widths, amps, freqs, rng.uniform(0, 2 * np.pi, n), bends,
                    root, taper, np.asarray(col, dtype=np.float64))


def _make_object(rng: np.random.Generator, width: int, height: int, frames: int,
                 main: bool) -> _Object:
    """Random object parameters; the main object is big, others smaller."""
    size = min(width, height)
    radius = size * (rng.uniform(0.16, 0.28) if main else rng.uniform(0.07, 0.15))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    k = int(rng.integers(2, 5)) if shape == "blob" else 1
    harm = np.stack([rng.integers(2, 6, k).astype(float), rng.uniform(0.05, 0.18, k),
                     rng.uniform(0, 2 * np.pi, k)], axis=1)
    if shape == "star":
        harm = np.array([[float(rng.integers(4, 8)), rng.uniform(0.15, 0.3), rng.uniform(0, 6.3)]])
    margin = np.array([width, height]) * 0.5 - radius * 0.6
    centre = np.array([width, height]) * 0.5
    start = centre + rng.uniform(-1, 1, 2) * margin * 0.7
    travel = rng.uniform(0.0, 4.0) * max(frames - 1, 1) * (size / 256.0)  # up to ~4 px/frame
    direction = rng.uniform(0, 2 * np.pi)
    end = np.clip(start + travel * np.array([math.cos(direction), math.sin(direction)]),
                  centre - margin, centre + margin)
    wobble = np.stack([rng.uniform(0, 0.04 * size, 2), rng.uniform(0.05, 0.3, 2),
                       rng.uniform(0, 2 * np.pi, 2)], axis=1)
    colours = np.stack([_saturated_colour(rng), _saturated_colour(rng)])
    if rng.random() < 0.3:
        colours[1] = colours[0] * rng.uniform(0.15, 0.5)
    pattern = ("stripes", "checker", "noise", "plain")[int(rng.integers(4))]
    pattern_params = np.concatenate([rng.uniform(4.0, 14.0, 1) * (size / 256.0),
                                     rng.uniform(0, np.pi, 1), rng.normal(0, 0.25, (6, 2)).ravel(),
                                     rng.uniform(0, 2 * np.pi, 6)])
    light = rng.normal(size=2)
    obj = _Object(
        shape=shape, radius=radius, aspect=float(rng.uniform(0.6, 1.6)), harmonics=harm,
        edge_soft=0.0 if rng.random() < 0.6 else float(rng.uniform(2.5, 8.0) * size / 256.0),
        start=start, end=end, wobble=wobble, angle0=float(rng.uniform(0, 2 * np.pi)),
        spin=float(rng.normal(0, 0.05)), pulse=(float(rng.uniform(0, 0.08)),
                                                 float(rng.uniform(0.1, 0.4)),
                                                 float(rng.uniform(0, 6.3))),
        colours=colours, pattern=pattern, pattern_params=pattern_params,
        light=light / (np.linalg.norm(light) + 1e-9),
        highlight=np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5),
                            rng.uniform(0.0, 2.5)]))
    if rng.random() < 0.45:
        obj.strands.append(_make_strands(rng, radius, "hair", colours[0]))
    if rng.random() < 0.3:
        obj.strands.append(_make_strands(rng, radius, "wire", colours[0]))
    return obj


def _make_background(rng: np.random.Generator, width: int, height: int) -> _Background:
    """Random backdrop parameters: low saturation, low contrast, defocused."""
    size = min(width, height)

    def waves(n: int) -> np.ndarray:
        freq = rng.uniform(0.6, 5.0, n) * 2 * np.pi / size  # a few cycles per frame at most
        ang = rng.uniform(0, 2 * np.pi, n)
        amp = 1.0 / (freq * size / (2 * np.pi))
        return np.stack([freq * np.cos(ang), freq * np.sin(ang), rng.uniform(0, 2 * np.pi, n),
                         amp / amp.sum()], axis=1)

    base = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.05, 0.4))
    tint = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.05, 0.4))
    nb = int(rng.integers(0, 6))
    blobs = np.concatenate([rng.uniform(0, 1, (nb, 2)) * [width, height],
                            rng.uniform(0.06, 0.25, (nb, 1)) * size,
                            rng.uniform(0.5, 1.5, (nb, 1)),
                            rng.uniform(0.5, 2.0, (nb, 3))], axis=1)
    nbar = int(rng.integers(0, 4))
    bars = np.concatenate([rng.uniform(0, 1, (nbar, 1)) * width,
                           rng.uniform(0.03, 0.15, (nbar, 1)) * size,
                           rng.uniform(0.04, 0.1, (nbar, 1)) * size,
                           rng.normal(0, 0.3, (nbar, 1)),
                           rng.uniform(0.4, 1.8, (nbar, 1))], axis=1)
    return _Background(base=base, tint=tint, waves=waves(int(rng.integers(6, 12))),
                       chroma_waves=waves(4), contrast=float(rng.uniform(0.15, 0.6)),
                       pan=rng.normal(0, 1.2, 2) * size / 256.0, blobs=blobs, bars=bars,
                       grain=float(rng.uniform(0.002, 0.012)))


# ----------------------------------------------------------------------------------------------
# Rendering


def _smoothstep01(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _edge_coverage(sdf_px: np.ndarray, soft: float) -> np.ndarray:
    """Coverage from a signed distance in pixels (negative inside)."""
    if soft <= 0.0:
        return np.clip(0.5 - sdf_px, 0.0, 1.0)
    return _smoothstep01(0.5 - sdf_px / soft)


def _outline_radius(obj: _Object, theta: np.ndarray) -> np.ndarray:
    """Radius of blob/star outlines as a function of angle (1 = nominal)."""
    r = np.ones_like(theta)
    for order, amp, phase in obj.harmonics:
        r = r + amp * np.cos(order * theta + phase)
    return r


def _shape_sdf(obj: _Object, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the outline in object pixels (negative inside)."""
    a = obj.radius * math.sqrt(obj.aspect)
    b = obj.radius / math.sqrt(obj.aspect)
    if obj.shape == "ellipse":
        return (np.hypot(u / a, v / b) - 1.0) * min(a, b)
    if obj.shape == "box":
        corner = 0.25 * min(a, b)
        qx = np.abs(u) - (a - corner)
        qy = np.abs(v) - (b - corner)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - corner
    rho = np.hypot(u, v)
    if obj.shape == "ring":
        return np.abs(rho - obj.radius * 0.72) - obj.radius * 0.28
    outline = obj.radius * _outline_radius(obj, np.arctan2(v, u))
    return (rho - outline) * (0.75 if obj.shape == "star" else 0.9)


def _texture(obj: _Object, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shaded, patterned linear colour in object coordinates, (..., 3)."""
    period, angle = obj.pattern_params[0], obj.pattern_params[1]
    if obj.pattern == "stripes":
        m = 0.5 + 0.5 * np.tanh(3.0 * np.sin((u * math.cos(angle) + v * math.sin(angle)) / period))
    elif obj.pattern == "checker":
        m = 0.5 + 0.5 * np.tanh(3.0 * np.sin(u / period) * np.sin(v / period))
    elif obj.pattern == "noise":
        k = obj.pattern_params[2:14].reshape(6, 2) * 4.0 / period
        ph = obj.pattern_params[14:20]
        m = 0.5 + 0.5 * np.tanh(sum(np.sin(k[i, 0] * u + k[i, 1] * v + ph[i]) for i in range(6)))
    else:
        m = np.zeros_like(u)
    colour = obj.colours[0] + (obj.colours[1] - obj.colours[0]) * m[..., None]
    shade = np.clip(0.85 + 0.5 * (u * obj.light[0] + v * obj.light[1]) / obj.radius, 0.35, 1.4)
    hx, hy, strength = obj.highlight
    spot = strength * np.exp(-((u / obj.radius - hx) ** 2 + (v / obj.radius - hy) ** 2) / 0.03)
    return colour * shade[..., None] + spot[..., None]


def _strand_boxes(strands: _Strands, radius: float, centre: np.ndarray, angle: float,
                  scale: float) -> np.ndarray:
    """Pixel bounding box (x0, y0, x1, y1) of every strand at this pose, (n, 4) floats."""
    c, s = np.cos(strands.angles), np.sin(strands.angles)
    root = radius * strands.root
    side = strands.amps + np.abs(strands.bends) * strands.lengths ** 2 + strands.widths + 1.0
    ends = np.stack([np.stack([root * c, root * s], 1),
                     np.stack([(root + strands.lengths) * c, (root + strands.lengths) * s], 1)])
    ca, sa = math.cos(angle), math.sin(angle)
    px = centre[0] + scale * (ends[..., 0] * ca - ends[..., 1] * sa)
    py = centre[1] + scale * (ends[..., 0] * sa + ends[..., 1] * ca)
    pad = side * scale + 1.0
    return np.stack([px.min(0) - pad, py.min(0) - pad, px.max(0) + pad, py.max(0) + pad], 1)


def _strand_coverage(strands: _Strands, i: int, radius: float, u: np.ndarray,
                     v: np.ndarray) -> np.ndarray:
    """Coverage of strand i (a box-filtered thin line) at object coordinates u, v in pixels."""
    c, s = math.cos(strands.angles[i]), math.sin(strands.angles[i])
    du, dv = u - radius * strands.root * c, v - radius * strands.root * s
    along = du * c + dv * s
    across = -du * s + dv * c
    length = strands.lengths[i]
    frac = np.clip(along / length, 0.0, 1.0)
    wave = (strands.amps[i] * np.sin(strands.freqs[i] * along + strands.phases[i]) * frac
            + strands.bends[i] * along ** 2)
    width = strands.widths[i] * (1.0 - (1.0 - strands.taper) * frac)
    cov = np.clip(0.5 + 0.5 * width - np.abs(across - wave), 0.0, np.minimum(width, 1.0))
    return cov * np.clip(along + 0.5, 0.0, 1.0) * np.clip(length - along + 0.5, 0.0, 1.0)


def _object_pose(obj: _Object, t: float, frames: int) -> tuple[np.ndarray, float, float]:
    """Centre (pixels), rotation and scale of the object at time t (in frames)."""
    f = t / max(frames - 1, 1)
    centre = obj.start + (obj.end - obj.start) * f
    centre = centre + obj.wobble[:, 0] * np.sin(obj.wobble[:, 1] * t + obj.wobble[:, 2])
    scale = 1.0 + obj.pulse[0] * math.sin(obj.pulse[1] * t + obj.pulse[2])
    return centre, obj.angle0 + obj.spin * t, scale


def _render_object(obj: _Object, t: float, frames: int, width: int,
                   height: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Premultiplied colour and coverage of one object at time t, inside its bounding box."""
    centre, angle, scale = _object_pose(obj, t, frames)
    reach = obj.extent() * scale
    x0, x1 = max(int(centre[0] - reach), 0), min(int(centre[0] + reach) + 1, width)
    y0, y1 = max(int(centre[1] - reach), 0), min(int(centre[1] + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5 - centre[0]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5 - centre[1]
    ca, sa = math.cos(angle), math.sin(angle)
    u = (xs * ca + ys * sa) / scale
    v = (-xs * sa + ys * ca) / scale
    cov = _edge_coverage(_shape_sdf(obj, u, v) * scale, obj.edge_soft)
    prem = _texture(obj, u, v) * cov[..., None]
    for strands in obj.strands:
        boxes = _strand_boxes(strands, obj.radius, centre, angle, scale)
        for i, (bx0, by0, bx1, by1) in enumerate(boxes):
            sx0, sx1 = max(int(bx0), x0) - x0, min(int(bx1) + 1, x1) - x0
            sy0, sy1 = max(int(by0), y0) - y0, min(int(by1) + 1, y1) - y0
            if sx0 >= sx1 or sy0 >= sy1:
                continue
            box = (slice(sy0, sy1), slice(sx0, sx1))
            hair = _strand_coverage(strands, i, obj.radius, u[box] * scale, v[box] * scale)
            prem[box] = strands.colour * hair[..., None] + prem[box] * (1.0 - hair[..., None])
            cov[box] = hair + cov[box] * (1.0 - hair)
    return (slice(y0, y1), slice(x0, x1)), prem, cov


def _subsamples(objects: list[_Object], frames: int) -> int:
    """Motion-blur samples so that no object moves more than ~1 pixel between samples."""
    fastest = 0.0
    for obj in objects:
        a, _, _ = _object_pose(obj, 0.0, frames)
        b, _, _ = _object_pose(obj, 1.0, frames)
        fastest = max(fastest, float(np.linalg.norm(b - a)) + abs(obj.spin) * obj.extent()
                      + float(np.abs(obj.wobble[:, 0] * obj.wobble[:, 1]).max()))
    return int(np.clip(math.ceil(fastest * SHUTTER), 1, MAX_SUBSAMPLES))


def _render_foreground(objects: list[_Object], t: float, frames: int, width: int, height: int,
                       samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Motion-blurred premultiplied foreground and its exact coverage at frame time t."""
    prem = np.zeros((height, width, 3))
    cov = np.zeros((height, width))
    for j in range(samples):
        ts = t + SHUTTER * ((j + 0.5) / samples - 0.5)
        p_s = np.zeros((height, width, 3))
        c_s = np.zeros((height, width))
        for obj in objects:  # back to front
            hit = _render_object(obj, ts, frames, width, height)
            if hit is None:
                continue
            box, p, c = hit
            p_s[box] = p + p_s[box] * (1.0 - c[..., None])
            c_s[box] = c + c_s[box] * (1.0 - c)
        prem += p_s
        cov += c_s
    return prem / samples, cov / samples


def _render_background(bg: _Background, t: float, width: int, height: int) -> np.ndarray:
    """Linear backdrop at time t: defocused fields, soft blobs and bars, panned by the camera."""
    off = bg.pan * t
    xs = np.arange(width, dtype=np.float64) + 0.5 + off[0]
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5 + off[1]

    def field_of(waves: np.ndarray) -> np.ndarray:
        out = np.zeros((height, width))
        for kx, ky, ph, amp in waves:
            out += amp * np.cos(kx * xs + ky * ys + ph)
        return out

    lum = np.exp(bg.contrast * 2.0 * field_of(bg.waves))
    mix = 0.5 + 0.5 * np.tanh(2.0 * field_of(bg.chroma_waves))
    img = (bg.base + (bg.tint - bg.base) * mix[..., None]) * lum[..., None]
    for x, y, sigma, parallax, r, g, b in bg.blobs:
        px, py = x - off[0] * (parallax - 1.0), y - off[1] * (parallax - 1.0)
        w = np.exp(-((xs - off[0] - px) ** 2 + (ys - off[1] - py) ** 2) / (2 * sigma ** 2))
        img = img * (1.0 + w[..., None] * (np.array([r, g, b]) - 1.0))
    for x, half, soft, angle, gain in bg.bars:
        d = np.abs((xs - x) * math.cos(angle) - ys * math.sin(angle)) - half
        w = _smoothstep01(0.5 - d / soft)
        img = img * (1.0 + w[..., None] * (gain - 1.0))
    return img


@dataclass(frozen=True)
class Shot:
    """A rendered shot: scene-linear ACEScg plates and the exact foreground alpha."""

    rgb: np.ndarray  # (T, H, W, 3) float32, scene-linear ACEScg
    alpha: np.ndarray  # (T, H, W) float32 in [0, 1]
    frames: tuple[int, ...]  # frame numbers, e.g. 1001..1020
    seed: int


def generate_shot(seed: int, *, frames: int = 20, width: int = 256, height: int = 256,
                  first_frame: int = 1001, objects: int | None = None,
                  grain: bool = True) -> Shot:
    """Render a shot deterministically from `seed` (same seed, same pixels).

    Scene-linear ACEScg RGB and the ground-truth alpha (the exact coverage of the motion-blurred
    foreground), for `frames` frames numbered from `first_frame`.
    """
    if frames < 1 or width < 8 or height < 8:
        raise ValueError("a shot needs at least 1 frame of at least 8x8 pixels")
    rng = np.random.default_rng([int(seed), 0x5EED])
    count = int(rng.integers(1, 4)) if objects is None else int(objects)
    objs = [_make_object(rng, width, height, frames, main=(i == 0)) for i in range(count)]
    objs = objs[1:] + objs[:1] if count > 1 and rng.random() < 0.5 else objs  # depth order
    bg = _make_background(rng, width, height)
    samples = _subsamples(objs, frames)
    rgb = np.empty((frames, height, width, 3), np.float32)
    alpha = np.empty((frames, height, width), np.float32)
    for i in range(frames):
        prem, cov = _render_foreground(objs, float(i), frames, width, height, samples)
        img = prem + _render_background(bg, float(i), width, height) * (1.0 - cov[..., None])
        if grain:
            noise = np.random.default_rng([int(seed), i, 0x6A1]).standard_normal(img.shape)
            img = img + noise * bg.grain * (0.3 + np.sqrt(np.maximum(img, 0.0)))
        rgb[i] = img
        alpha[i] = cov
    return Shot(rgb=rgb, alpha=np.clip(alpha, 0.0, 1.0),
                frames=tuple(range(first_frame, first_frame + frames)), seed=int(seed))


# ----------------------------------------------------------------------------------------------
# Colour (PyOpenColorIO does the maths)


@lru_cache(maxsize=16)
def _processor(src: str, dst: str, config: str = DEFAULT_CONFIG):
    import PyOpenColorIO as OCIO
    try:
        cfg = OCIO.Config.CreateFromFile(config)
        return cfg.getProcessor(src, dst).getDefaultCPUProcessor()
    except Exception as exc:  # OCIO raises its own exception type
        raise ColourError(f"cannot convert {src!r} to {dst!r}: {exc}", path=config) from None


def convert(rgb: np.ndarray, src: str, dst: str, config: str = DEFAULT_CONFIG) -> np.ndarray:
    """Colour-convert an (..., 3) array with OCIO; returns a new float32 array."""
    out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    _processor(src, dst, config).applyRGB(out.reshape(-1, 3))
    return out


def to_model_input(rgb_linear: np.ndarray, space: str = MODEL_SPACE) -> np.ndarray:
    """ACEScg plates as the pipeline shows them to the model: `space`, NaN-free, in [0, 1]."""
    out = convert(rgb_linear, WORKING_SPACE, space)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Files (OpenImageIO writes them)


def _write_image(path: str, pixels: np.ndarray, fmt: str, *, bits: int = 0,
                 attrs: dict[str, object] | None = None) -> None:
    """Write one image atomically (temp file in the same folder, then rename)."""
    import OpenImageIO as oiio
    h, w = pixels.shape[:2]
    nch = 1 if pixels.ndim == 2 else pixels.shape[2]
    spec = oiio.ImageSpec(w, h, nch, fmt)
    spec.channelnames = ("A",) if nch == 1 else ("R", "G", "B", "A")[:nch]
    if nch == 1:
        spec.alpha_channel = 0
    if bits:
        spec.attribute("oiio:BitsPerSample", bits)
    if path.endswith(".exr"):
        spec.attribute("compression", "zip")
    for key, value in (attrs or {}).items():
        spec.attribute(key, value)

    def write(tmp: str) -> None:
        out = oiio.ImageOutput.create(tmp)
        if out is None or not out.open(tmp, spec):
            raise OutputError(f"cannot write image: {library_text(oiio.geterror)}", path=path)
        # OIIO needs (H, W, C): a 2-D array is misread (garbage pixels), so add the axis.
        ok = out.write_image(np.ascontiguousarray(pixels.reshape(h, w, nch)))
        out.close()
        if not ok:
            raise OutputError(f"cannot write image: {library_text(out.geterror)}", path=path)

    atomic_write(path, write)


@dataclass(frozen=True)
class ShotFiles:
    """Where a written shot lives: `####` patterns for the plate, ground truth and DPX."""

    plate: str  # ACEScg half EXR
    alpha: str  # ground-truth alpha, float EXR, channel "A"
    dpx: str  # 10-bit log DPX, or "" when not written
    dpx_space: str
    frames: tuple[int, ...]


def write_shot(shot: Shot, folder: str, *, name: str = "synth", dpx_space: str = "",
               config: str = DEFAULT_CONFIG) -> ShotFiles:
    """Write a shot as EXR sequences (and 10-bit DPX in `dpx_space`, e.g. 'ACEScct').

    plate/NAME.####.exr (ACEScg, half), gt/NAME_alpha.####.exr (float, channel A), and with
    `dpx_space`: dpx/NAME.####.dpx holding OCIO's encoding of the plate in that space.
    """
    plate_dir, gt_dir = os.path.join(folder, "plate"), os.path.join(folder, "gt")
    dpx_dir = os.path.join(folder, "dpx")
    for d in (plate_dir, gt_dir) + ((dpx_dir,) if dpx_space else ()):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder: {exc.strerror}", path=d) from None
    files = ShotFiles(plate=os.path.join(plate_dir, f"{name}.####.exr"),
                      alpha=os.path.join(gt_dir, f"{name}_alpha.####.exr"),
                      dpx=os.path.join(dpx_dir, f"{name}.####.dpx") if dpx_space else "",
                      dpx_space=dpx_space, frames=shot.frames)
    common = {"vrmbg:synth_seed": int(shot.seed), "FramesPerSecond": 24.0}
    for i, frame in enumerate(shot.frames):
        num = f"{frame:04d}"
        attrs = dict(common, **{"oiio:ColorSpace": WORKING_SPACE, "vrmbg:frame": frame})
        _write_image(files.plate.replace("####", num), shot.rgb[i].astype(np.float16), "half",
                     attrs=attrs)
        _write_image(files.alpha.replace("####", num), shot.alpha[i], "float",
                     attrs={"vrmbg:frame": frame, "vrmbg:synth_seed": int(shot.seed)})
        if dpx_space:
            log = np.clip(convert(shot.rgb[i], WORKING_SPACE, dpx_space, config), 0.0, 1.0)
            codes = np.round(log * 1023.0).astype(np.uint16)
            _write_image(files.dpx.replace("####", num), (codes << 6) | (codes >> 4), "uint16",
                         bits=10)
    return files


# ----------------------------------------------------------------------------------------------
# Training data


def iter_training_clips(seed: int, *, frames: int = 6, sizes: tuple[tuple[int, int], ...] = (
        (256, 256),), space: str = MODEL_SPACE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless clips for training: (rgb (T,H,W,3) float32 in [0,1] in `space`, alpha (T,H,W)).

    The RGB is what the pipeline feeds the model: the ACEScg plate stored as half, converted by
    OCIO to the model's colour space and clamped to [0, 1]. Clip k uses shot seed `seed * 1e6 + k`
    (shot seeds below 1e6 are therefore free for held-out evaluation with training seed >= 1).
    """
    rng = np.random.default_rng([int(seed), 0xC11B])
    k = 0
    while True:
        width, height = sizes[int(rng.integers(len(sizes)))]
        shot = generate_shot(int(seed) * 1_000_000 + k, frames=frames, width=width, height=height)
        k += 1
        plate = shot.rgb.astype(np.float16).astype(np.float32)
        yield to_model_input(plate, space), shot.alpha
