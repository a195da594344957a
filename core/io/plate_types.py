"""What every plate reader hands back, image sequence or movie alike: `ImageInfo` (a frame's
header facts) and `Plate` (its decoded display-window RGB), and the frame facts read from a
header's metadata (frame rate, timecode).

Kept apart from the readers (standard library and numpy only), so the movie reader, the matte
writer and type hints use them without pulling in OpenImageIO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

Window = tuple[int, int, int, int]  # x, y, width, height


@dataclass
class ImageInfo:
    """Header facts of one frame: windows, channels, parts, pixel type and metadata."""

    path: str
    file_format: str
    width: int
    height: int
    display_window: Window
    data_window: Window
    channels: tuple[str, ...]
    parts: tuple[str, ...]
    pixel_type: str
    bit_depth: int
    metadata: dict[str, Any]
    # OIIO type name of each metadata value ("timecode", "rational", "float[8]"...), so
    # mattes can write them back with the same type.
    attribute_types: dict[str, str] = field(default_factory=dict)
    part_index: int = 0
    selected_channels: tuple[str, ...] = ()  # the file channels read as R, G, B


@dataclass
class Plate:
    """One decoded frame: display-window RGB (H, W, 3), raw values.

    float32, or float16 when a half plate was read with `keep_half` (no widening copy).
    """

    frame: int
    path: str
    rgb: np.ndarray
    info: ImageInfo


def timecode_text(value: Sequence[int]) -> str:
    """`hh:mm:ss:ff` (`;` before frames when drop-frame) from a packed SMPTE timecode."""
    packed = int(value[0])

    def bcd(byte: int) -> int:
        return (byte >> 4) * 10 + (byte & 0x0F)

    hours = bcd((packed >> 24) & 0x3F)
    minutes = bcd((packed >> 16) & 0x7F)
    seconds = bcd((packed >> 8) & 0x7F)
    frames = bcd(packed & 0x3F)
    separator = ";" if packed & 0x40 else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{frames:02d}"


def metadata_fps(metadata: dict[str, Any]) -> float | None:
    """Frames per second from EXR's standard `framesPerSecond`, OIIO's `FramesPerSecond`
    or DPX `dpx:FrameRate`, if present."""
    for key in ("framesPerSecond", "FramesPerSecond", "dpx:FrameRate"):
        value = metadata.get(key)
        if isinstance(value, tuple) and len(value) == 2 and value[1]:
            return value[0] / value[1]
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None
