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

This module draws a shot (`scene`), renders its frames (`drawing`) and converts them the way the
pipeline does; `shot_files` writes a shot as plate files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from ..errors import ColourError
from .drawing import motion_samples, render_background, render_foreground
from .scene import make_background, make_object

WORKING_SPACE = "ACEScg"
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
DEFAULT_CONFIG = "ocio://studio-config-latest"


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
    objs = [make_object(rng, width, height, frames, main=(i == 0)) for i in range(count)]
    objs = objs[1:] + objs[:1] if count > 1 and rng.random() < 0.5 else objs  # depth order
    bg = make_background(rng, width, height)
    samples = motion_samples(objs, frames)
    rgb = np.empty((frames, height, width, 3), np.float32)
    alpha = np.empty((frames, height, width), np.float32)
    for i in range(frames):
        prem, cov = render_foreground(objs, float(i), frames, width, height, samples)
        img = prem + render_background(bg, float(i), width, height) * (1.0 - cov[..., None])
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
