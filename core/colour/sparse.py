"""Converting only the pixels the resize to the model reads (`ColourTransform.convert_pixels`).

A large plate at a small inference size (8K at 1024², 4K in a 512 preview) is read by the
bilinear resize at a few rows and columns only: about an eighth of its pixels. Those rows x
columns are gathered into one small image, converted as a whole plate would be, and scattered
back; the rest of the (H, W, 3) result is 0.
"""

from __future__ import annotations

import numpy as np


def gather(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The (len(rows), len(cols), 3) pixels of `rgb` at `rows` x `cols`, C-contiguous.

    Rows are taken first (whole rows, any layout), then columns with each pixel moved as one
    item, several times faster than numpy's two-axis fancy indexing.
    """
    picked = np.ascontiguousarray(np.take(rgb, rows, axis=0))
    pixel = np.dtype((np.void, 3 * picked.itemsize))
    flat = picked.view(pixel).reshape(picked.shape[:2])
    return np.take(flat, cols, axis=1).view(picked.dtype).reshape(len(rows), len(cols), 3)


def scatter(out: np.ndarray, rows: np.ndarray, cols: np.ndarray, part: np.ndarray) -> None:
    """Put the (len(rows), len(cols), 3) `part` into C-contiguous `out` at `rows` x `cols`."""
    pixel = np.dtype((np.void, 3 * out.itemsize))
    target = out.view(pixel).reshape(out.shape[:2])
    target[rows[:, None], cols] = np.ascontiguousarray(part).view(pixel).reshape(part.shape[:2])
