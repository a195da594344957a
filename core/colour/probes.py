"""The pixels every other conversion path is checked on against OCIO's float CPU processor.

A conversion is only used where it matches that processor on these values within its budget:
OCIO's half-input processor (`half.checked_half_processor`, on `half_check_pixels`) and the
device tables (`device.build_device_colour`, on `probe_pixels`).
"""

from __future__ import annotations

import numpy as np


def probe_pixels() -> np.ndarray:
    """(N, 1, 3) float32 values spanning what plates hold: scene-linear light from 1e-6 to
    1e4 with its negatives, log and display code values, and random colours, so channels
    differ and the matrices mix them (saturated colours, in code values or in light, are where
    a matrix cancels large values, and the tables need the most care)."""
    rng = np.random.default_rng(20261203)
    magnitudes = np.geomspace(1e-6, 1e4, 4096, dtype=np.float64)
    ramps = [np.linspace(-0.25, 1.25, 8192), magnitudes, -magnitudes,
             rng.uniform(-0.1, 2.0, 8192), rng.uniform(0.0, 1.0, 8192),
             np.exp(rng.uniform(np.log(1e-4), np.log(64.0), 8192))]
    grey = np.concatenate(ramps).astype(np.float32)
    colours = np.stack([grey, rng.permutation(grey), rng.permutation(grey)], axis=-1)
    code_values = rng.uniform(-0.05, 1.4, (65536, 3))
    # each channel on its own from deep shadow to a bright highlight: saturated light that a
    # gamut matrix turns into small differences of large values
    saturated = np.exp(rng.uniform(np.log(1e-3), np.log(64.0), (65536, 3)))
    greys = np.repeat(grey[:, None], 3, axis=1)
    values = np.concatenate([greys, colours, code_values, saturated]).astype(np.float32)
    return np.ascontiguousarray(values[:, None, :])


def half_check_pixels() -> np.ndarray:
    """(N, 1, 3) half pixels a half processor must get right: every half value in each
    channel alone (the others at a mid grey) and on the grey axis, and the probe pixels."""
    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    rows = [np.repeat(every[:, None], 3, axis=1)]
    for channel in range(3):
        row = np.full((every.size, 3), 0.18, np.float16)
        row[:, channel] = every
        rows.append(row)
    with np.errstate(over="ignore"):  # probes beyond the half range become Inf, as in a plate
        rows.append(probe_pixels()[:, 0, :].astype(np.float16))
    return np.ascontiguousarray(np.concatenate(rows)[:, None, :])
