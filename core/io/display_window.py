"""Decoded pixels into the display window: the channel pick, the type conversion and the
crop/pad in one copy, split over OpenImageIO's thread count.

The model sees the frame the artist sees, so a plate always comes back at the display window's
size: overscan (data-window pixels outside the display window) is cropped away, and display
pixels the data window does not cover (a cropped or bounding-box render) are 0.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import OpenImageIO as oiio

from .halfs import copy_into
from .plate_types import Window


def to_display_window(raw: np.ndarray, local: Sequence[int], data: Window, display: Window,
                scale: float | None, dtype: type = np.float32, threads: int = 0) -> np.ndarray:
    """Pick channels `local` of the data-window pixels `raw` into a `dtype` display window.

    One copy at most does the channel pick, the type conversion and the crop/pad; pixels
    outside the data window are 0.
    """
    x, y, w, h = data
    fx, fy, fw, fh = display
    ncols = len(local)
    contiguous = list(local) == list(range(local[0], local[0] + ncols))
    if (data == display and raw.dtype == dtype and scale is None
            and contiguous and ncols == raw.shape[2]):
        return np.ascontiguousarray(raw)
    x0, x1 = max(x, fx), min(x + w, fx + fw)
    y0, y1 = max(y, fy), min(y + h, fy + fh)
    covered = x0 <= fx and y0 <= fy and x1 >= fx + fw and y1 >= fy + fh
    out = (np.empty if covered else np.zeros)((fh, fw, ncols), dtype=dtype)
    if x0 >= x1 or y0 >= y1:
        return out
    dst = out[y0 - fy:y1 - fy, x0 - fx:x1 - fx]
    src = raw[y0 - y:y1 - y, x0 - x:x1 - x]
    if raw.dtype == dtype and scale is None:  # a plain copy: not worth other threads
        _convert_rows(dst, src, local, contiguous, scale)
        return out
    _parallel_rows(dst.shape[0], dst.size,
                   lambda a, b: _convert_rows(dst[a:b], src[a:b], local, contiguous, scale),
                   threads)
    return out


def _convert_rows(dst: np.ndarray, src: np.ndarray, local: Sequence[int], contiguous: bool,
                  scale: float | None) -> None:
    """Copy-convert channels `local` of `src` rows into `dst` (its own dtype), then scale."""
    if contiguous:
        copy_into(dst, src[..., local[0]:local[0] + len(local)])
    else:
        for column, channel in enumerate(local):
            dst[..., column] = src[..., channel]
    if scale is not None:
        dst *= np.float32(scale)


_PARALLEL_MIN_VALUES = 1 << 20  # below ~1M values a thread hand-off costs more than it saves
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _parallel_rows(rows: int, values: int, work: Callable[[int, int], None],
                   cap: int = 0) -> None:
    """Run `work(first_row, end_row)` over row bands on OIIO's thread count (at most `cap`
    threads when given).

    numpy releases the GIL while casting, so the half -> float32 conversion of a 2K/4K
    frame uses the cores the decoder has just finished with.
    """
    global _pool
    threads = max(1, min(oiio.get_int_attribute("threads") or 1, 8, cap or 8))
    if threads == 1 or values < _PARALLEL_MIN_VALUES or rows < threads:
        work(0, rows)
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="vrmbg-convert")
    bounds = [rows * i // threads for i in range(threads + 1)]
    futures = [_pool.submit(work, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    work(bounds[0], bounds[1])
    for future in futures:
        future.result()
