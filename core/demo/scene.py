"""What a generated shot holds, drawn once from its seed: foreground objects (shape, edge,
texture, motion path, hair or wire strands) and a defocused, camera-panned backdrop.

Only parameters live here; `drawing` turns them into pixels at any frame time, and `synth`
puts the two together into a shot. The draws' order is part of the result: the same seed gives
the same parameters, and so the same pixels, on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("ellipse", "box", "blob", "star", "ring")


@dataclass
class Strands:
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
class Subject:
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
    strands: list[Strands] = field(default_factory=list)

    def extent(self) -> float:
        """Largest distance from the centre any covered pixel can have, in pixels."""
        reach = self.radius * max(self.aspect, 1.0 / self.aspect, 1.0) * 1.6
        for s in self.strands:
            reach = max(reach, self.radius * s.root + float(s.lengths.max()) + float(s.amps.max()))
        return reach * (1.0 + abs(self.pulse[0])) + self.edge_soft + 3.0


@dataclass
class Background:
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
                  colour: np.ndarray) -> Strands:
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
    return Strands(angles, lengths, widths, amps, freqs, rng.uniform(0, 2 * np.pi, n), bends,
                    root, taper, np.asarray(col, dtype=np.float64))


def make_object(rng: np.random.Generator, width: int, height: int, frames: int,
                 main: bool) -> Subject:
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
    obj = Subject(
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


def make_background(rng: np.random.Generator, width: int, height: int) -> Background:
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
    return Background(base=base, tint=tint, waves=waves(int(rng.integers(6, 12))),
                       chroma_waves=waves(4), contrast=float(rng.uniform(0.15, 0.6)),
                       pan=rng.normal(0, 1.2, 2) * size / 256.0, blobs=blobs, bars=bars,
                       grain=float(rng.uniform(0.002, 0.012)))


def make_twins(rng: np.random.Generator, subject: Subject, width: int, height: int,
               frames: int) -> tuple[Subject, Subject]:
    """The subject and a look-alike: same shape, texture and strands, on its own path.

    The two start on opposite sides of the frame (along its long axis) and drift slowly, so
    that both are in view and either could be the one the matte is of.
    """
    size = min(width, height)
    long_axis = 0 if width >= height else 1
    dims = np.array([width, height], dtype=np.float64)
    centre = dims * 0.5
    sign = 1.0 if rng.random() < 0.5 else -1.0
    radius = subject.radius * rng.uniform(0.7, 0.95)
    pair = []
    for side in (sign, -sign):
        start = centre + rng.uniform(-0.15, 0.15, 2) * dims
        start[long_axis] = centre[long_axis] + side * rng.uniform(0.2, 0.3) * dims[long_axis]
        travel = rng.uniform(0.0, 2.0) * max(frames - 1, 1) * (size / 256.0)
        direction = rng.uniform(0, 2 * np.pi)
        margin = dims * 0.5 - radius * 0.6
        end = np.clip(start + travel * np.array([math.cos(direction), math.sin(direction)]),
                      centre - margin, centre + margin)
        wobble = subject.wobble.copy()
        wobble[:, 2] = rng.uniform(0, 2 * np.pi, 2)
        gain = rng.uniform(0.85, 1.15)
        pair.append(Subject(
            shape=subject.shape, radius=radius, aspect=subject.aspect * rng.uniform(0.9, 1.1),
            harmonics=subject.harmonics, edge_soft=subject.edge_soft, start=start, end=end,
            wobble=wobble, angle0=float(rng.uniform(0, 2 * np.pi)),
            spin=float(rng.normal(0, 0.05)),
            pulse=(subject.pulse[0], subject.pulse[1], float(rng.uniform(0, 6.3))),
            colours=subject.colours * gain, pattern=subject.pattern,
            pattern_params=subject.pattern_params, light=subject.light,
            highlight=subject.highlight, strands=list(subject.strands)))
    return pair[0], pair[1]
