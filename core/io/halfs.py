"""Half-float conversions at the speed of the CPU's own instructions.

Plates and mattes are half floats; the engine works in float32. numpy converts between the two
in software (about 11 ms for a 2K RGB frame each way on the reference machine), torch with the
CPU's conversion instructions (about 1 ms), and both round to nearest even, so the bits are the
same (only a signalling NaN's payload comes back quieted; a NaN stays a NaN). The engine's
frame copies (plates, colour blocks, mattes) go through here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _tensor(array: np.ndarray) -> Any:
    """A torch tensor sharing `array`'s memory, or None when torch cannot view it.

    torch is imported here, on the first frame, so that commands which never touch pixels
    (help, info) start without it.
    """
    import torch

    if array.dtype not in (np.float16, np.float32) or not array.dtype.isnative:
        return None
    if any(stride < 0 for stride in array.strides) or not array.flags.writeable:
        return None
    try:
        return torch.from_numpy(array)
    except (TypeError, ValueError, RuntimeError):
        return None


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """`dst[...] = src` (same shape), converting between half and float32 quickly; right even
    when the two share memory."""
    if np.may_share_memory(dst, src):  # one buffer: read it all before writing any of it
        src = np.array(src, copy=True)
    if dst.dtype != src.dtype and dst.shape == src.shape:
        to, of = _tensor(dst), _tensor(src)
        if to is not None and of is not None:
            try:
                to.copy_(of)
                return
            except RuntimeError:  # e.g. a destination whose elements overlap (0 strides)
                pass
    dst[...] = src


def to_half(array: np.ndarray) -> np.ndarray:
    """`array` as a new float16 array (round to nearest even, as numpy's own cast)."""
    out = np.empty(array.shape, dtype=np.float16)
    copy_into(out, np.asarray(array, dtype=np.float32))
    return out
