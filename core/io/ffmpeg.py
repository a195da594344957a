"""What the movie reader and writer share: FFmpeg's enum values, its error text, and frame
rates as exact fractions (23.976 is 24000/1001).
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import UsageError

# FFmpeg enum values (libavutil/pixfmt.h).
AVCOL_SPC_UNSPECIFIED = 2
AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG = 1, 2
BT709 = 1

_NTSC_BASES = (24, 30, 48, 60, 120)


def ffmpeg_message(exc: BaseException) -> str:
    """The first line of an FFmpeg/PyAV error (its type name when it has no text)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def fps_fraction(fps: float | int | str | Fraction) -> Fraction:
    """A frame rate as an exact fraction; 23.976/29.97/59.94 become 24000/1001 etc."""
    try:
        value = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"bad frame rate {fps!r}") from None
    if value <= 0:
        raise UsageError(f"bad frame rate {fps!r}")
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if value != ntsc and abs(value - ntsc) < Fraction(1, 200):
            return ntsc
    return value.limit_denominator(1001)
