"""The moving-disc ProRes plate the movie tests render (written with PyAV directly)."""

from __future__ import annotations

import numpy as np

from plate_factory import VIDEO_709, write_video
from render_helpers import SIZE

W, H = SIZE
COUNT = 8


def source_rgb(i: int) -> np.ndarray:
    """Frame i: ramps plus a yellow disc moving right (display-referred code values 0..1)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([0.1 + 0.8 * xx / W, 0.2 + 0.6 * yy / H,
                    0.5 + 0.4 * np.sin(xx * 0.2 + i * 0.7)], axis=-1)
    disc = ((xx - 10 - 9 * i) ** 2 + (yy - H / 2) ** 2) < 150
    rgb[disc] = (0.95, 0.9, 0.1)
    return rgb.astype(np.float32)


def write_prores_422(path: str, count: int = COUNT) -> str:
    """A ProRes 422 HQ .mov (Rec.709, limited range) written with PyAV."""
    frames = (np.round(source_rgb(i) * 65535).astype(np.uint16) for i in range(count))
    return write_video(path, frames, codec="prores_ks", pix_fmt="yuv422p10le",
                       frame_format="rgb48le", options={"profile": "hq"}, reformat=VIDEO_709)
