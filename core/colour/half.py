"""OCIO's half-input processor: half plates converted as they are decoded, no cast to float.

Built for half input, OCIO turns the per-channel curves that come first into one table of every
half value. `checked_half_processor` hands that processor out only where it starts with such a
table (else it is no faster than the float path) and matches the float processor within
`HALF_TOLERANCE` on every half value (`probes.half_check_pixels`), as the model sees them.
`apply_half` feeds it a half block in the layouts numpy gives.
"""

from __future__ import annotations

import numpy as np
import PyOpenColorIO as OCIO

from .probes import half_check_pixels

# Largest difference on the model input allowed between OCIO's half-input processor and its
# float processor (the budget for any conversion path is 1e-4).
HALF_TOLERANCE = 5e-5


def apply_half(processor: "OCIO.CPUProcessor", src: np.ndarray, dst: np.ndarray) -> None:
    """Apply a half-input processor to (h, w, 3) half `src` into float32 `dst`.

    OCIO reads interleaved pixels with gaps (the RGB of an RGBA plate) in place; any other
    layout (planar, Fortran order, reversed axes) is copied to one it can read first.
    """
    height, width = src.shape[:2]
    ys, xs, cs = src.strides
    xs = xs if width > 1 else 3 * cs  # a length-1 axis may carry any stride in numpy
    ys = ys if height > 1 else width * xs
    if cs != src.itemsize or xs < 3 * cs or ys < width * xs:
        src = np.ascontiguousarray(src)
        ys, xs, cs = width * 3 * src.itemsize, 3 * src.itemsize, src.itemsize
    processor.apply(OCIO.PackedImageDesc(src, width, height, 3, OCIO.BIT_DEPTH_F16, cs, xs, ys),
                    OCIO.PackedImageDesc(dst, width, height, 3))


def _as_the_model_sees(values: np.ndarray, bad_in: np.ndarray) -> np.ndarray:
    """Converted float32 pixels with NaN/Inf (in or out) zeroed and clamped to [0, 1]."""
    out = np.where(bad_in[..., None] | ~np.isfinite(values), 0.0, values)
    return np.clip(out, 0.0, 1.0)


def checked_half_processor(processor: "OCIO.Processor",
                            reference: "OCIO.CPUProcessor") -> "OCIO.CPUProcessor | None":
    """The half-input CPU processor of `processor` when it starts with a table of every half
    value (else it is no faster than the float path: measured slower on ACEScg plates) and
    agrees with `reference` (the float processor) within HALF_TOLERANCE on
    `half_check_pixels`; None otherwise."""
    depths = (OCIO.BIT_DEPTH_F16, OCIO.BIT_DEPTH_F32, OCIO.OPTIMIZATION_DEFAULT)
    try:
        ops = list(processor.getOptimizedProcessor(*depths).createGroupTransform())
        if not (ops and isinstance(ops[0], OCIO.Lut1DTransform)
                and ops[0].getInputHalfDomain()):
            return None
        half = processor.getOptimizedCPUProcessor(*depths)
    except Exception:  # noqa: BLE001 - no half processor: the float path serves half plates
        return None
    pixels = half_check_pixels()
    theirs = pixels.astype(np.float32)
    reference.applyRGB(theirs)
    ours = np.empty(pixels.shape, np.float32)
    apply_half(half, pixels, ours)
    bad_in = ~np.isfinite(pixels).all(axis=2)
    with np.errstate(invalid="ignore"):
        difference = np.abs(_as_the_model_sees(ours, bad_in) - _as_the_model_sees(theirs, bad_in))
    return half if float(difference.max()) <= HALF_TOLERANCE else None
