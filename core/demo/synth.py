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
from .scene import make_background, make_object, make_twins

WORKING_SPACE = "ACEScg"
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
DEFAULT_CONFIG = "ocio://studio-config-latest"


SHOT_KINDS = ("plain", "twins", "camouflage")


@dataclass(frozen=True)
class Shot:
    """A rendered shot: scene-linear ACEScg plates and the exact foreground alpha."""

    rgb: np.ndarray  # (T, H, W, 3) float32, scene-linear ACEScg
    alpha: np.ndarray  # (T, H, W) float32 in [0, 1]
    frames: tuple[int, ...]  # frame numbers, e.g. 1001..1020
    seed: int
    kind: str = "plain"


def generate_shot(seed: int, *, frames: int = 20, width: int = 256, height: int = 256,
                  first_frame: int = 1001, objects: int | None = None,
                  grain: bool = True, kind: str = "plain") -> Shot:
    """Render a shot deterministically from `seed` (same seed, same pixels).

    Scene-linear ACEScg RGB and the ground-truth alpha (the exact coverage of the motion-blurred
    foreground), for `frames` frames numbered from `first_frame`.

    `kind` picks shots whose matte the current frame alone does not settle, so that only the
    previous frame's matte (the prior, or an artist's keyframe) tells the model what to do:
    - "plain": the shots above;
    - "twins": the main subject and a look-alike (same shape, texture and strands, another
      path); only the subject is in the matte, the look-alike is not;
    - "camouflage": one subject that, for a few frames after the first, takes on the look of
      the backdrop behind it (desaturated, its texture faded), and stays in the matte.
    """
    if frames < 1 or width < 8 or height < 8:
        raise ValueError("a shot needs at least 1 frame of at least 8x8 pixels")
    if kind not in SHOT_KINDS:
        raise ValueError(f"unknown shot kind {kind!r} (one of {', '.join(SHOT_KINDS)})")
    rng = np.random.default_rng([int(seed), 0x5EED])
    count = int(rng.integers(1, 4)) if objects is None else int(objects)
    if kind == "camouflage":
        count = 1
    objs = [make_object(rng, width, height, frames, main=(i == 0)) for i in range(count)]
    in_matte = None
    if kind == "twins":
        twin_rng = np.random.default_rng([int(seed), 0x7717])
        subject, twin = make_twins(twin_rng, objs[0], width, height, frames)
        objs = [subject, *objs[1:], twin]
        in_matte = [True] * (len(objs) - 1) + [False]
        order = twin_rng.permutation(len(objs))  # depth order: the look-alike in front or not
        objs = [objs[i] for i in order]
        in_matte = [in_matte[i] for i in order]
    else:
        objs = objs[1:] + objs[:1] if count > 1 and rng.random() < 0.5 else objs  # depth order
    bg = make_background(rng, width, height)
    fade = _camouflage_fade(np.random.default_rng([int(seed), 0xCA30]), frames) \
        if kind == "camouflage" else None
    samples = motion_samples(objs, frames)
    rgb = np.empty((frames, height, width, 3), np.float32)
    alpha = np.empty((frames, height, width), np.float32)
    for i in range(frames):
        drawn = render_foreground(objs, float(i), frames, width, height, samples, in_matte)
        prem, cov = drawn[0], drawn[1]
        back = render_background(bg, float(i), width, height)
        if fade is not None and fade[0][i] > 0.0:
            # The subject looks like the backdrop: its colour mixes towards a gained copy of
            # what lies behind it (soft, desaturated), keeping a trace of its own texture.
            strength, gain = fade[0][i], fade[1]
            prem = prem * (1.0 - strength) + back * gain * cov[..., None] * strength
        img = prem + back * (1.0 - cov[..., None])
        if grain:
            noise = np.random.default_rng([int(seed), i, 0x6A1]).standard_normal(img.shape)
            img = img + noise * bg.grain * (0.3 + np.sqrt(np.maximum(img, 0.0)))
        rgb[i] = img
        alpha[i] = drawn[2] if in_matte is not None else cov
    return Shot(rgb=rgb, alpha=np.clip(alpha, 0.0, 1.0),
                frames=tuple(range(first_frame, first_frame + frames)), seed=int(seed), kind=kind)


def _camouflage_fade(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, float]:
    """Per-frame strength of the camouflage (0 on the first frame, a plateau after it) and the
    gain of the backdrop copy the subject takes on."""
    peak = rng.uniform(0.75, 0.95)
    start = int(rng.integers(1, max(2, frames // 2)))
    length = int(rng.integers(2, max(3, frames)))
    t = np.arange(frames)
    ramp = np.clip(np.minimum(t - start + 1, start + length - t) / 1.5, 0.0, 1.0)
    return peak * ramp, float(rng.uniform(0.75, 1.35))


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
        (256, 256),), space: str = MODEL_SPACE, kinds: dict[str, float] | None = None,
        with_kind: bool = False) -> Iterator[tuple]:
    """Endless clips for training: (rgb (T,H,W,3) float32 in [0,1] in `space`, alpha (T,H,W)),
    and the shot kind third with `with_kind`.

    The RGB is what the pipeline feeds the model: the ACEScg plate stored as half, converted by
    OCIO to the model's colour space and clamped to [0, 1]. Clip k uses shot seed `seed * 1e6 + k`
    (shot seeds below 1e6 are therefore free for held-out evaluation with training seed >= 1).
    `kinds` gives each shot kind's share of the clips (default: plain shots only, drawn exactly
    as before kinds existed).
    """
    rng = np.random.default_rng([int(seed), 0xC11B])
    names = list(kinds) if kinds else ["plain"]
    shares = np.array([kinds[n] for n in names] if kinds else [1.0], dtype=np.float64)
    shares = shares / shares.sum()
    k = 0
    while True:
        width, height = sizes[int(rng.integers(len(sizes)))]
        kind = names[int(rng.choice(len(names), p=shares))] if len(names) > 1 else names[0]
        shot = generate_shot(int(seed) * 1_000_000 + k, frames=frames, width=width,
                             height=height, kind=kind)
        k += 1
        plate = shot.rgb.astype(np.float16).astype(np.float32)
        rgb = to_model_input(plate, space)
        yield (rgb, shot.alpha, kind) if with_kind else (rgb, shot.alpha)
