"""Facts about a plate that do not stop a render but deserve a word before it starts.

- A data window that does not overlap the display window: every pixel the model sees is 0,
  so the matte would be of a black frame.
- EXR `chromaticities` that contradict the colour space the plate is read as (CIE XYZ
  primaries read as ACEScg, Rec.709 primaries read as ACES2065-1...): the colours the model
  sees would be wrong. Primaries are recognised from the header; the colour space's from its
  name (ACEScg/ACEScct/ACEScc = AP1, ACES2065-1 = AP0, names with Rec.709/sRGB, Rec.2020,
  P3, XYZ). Unrecognised ones are not judged.
"""

from __future__ import annotations

from typing import Any, Sequence

PRIMARIES = {  # red, green, blue xy (the white point is not compared)
    "Rec.709": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06),
    "ACES AP1": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044),
    "ACES AP0": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077),
    "Rec.2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046),
    "P3": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060),
    "CIE XYZ": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0),
}
# Lower-case fragments of colour space names and the primaries they imply, first match wins.
_SPACE_PRIMARIES = (("acescg", "ACES AP1"), ("acescct", "ACES AP1"), ("acescc", "ACES AP1"),
                    ("ap1", "ACES AP1"), ("aces2065", "ACES AP0"), ("ap0", "ACES AP0"),
                    ("xyz", "CIE XYZ"), ("2020", "Rec.2020"), ("p3", "P3"),
                    ("709", "Rec.709"), ("srgb", "Rec.709"))
_TOLERANCE = 0.01


def primaries_name(chromaticities: Any) -> str:
    """The name of the primaries in an EXR `chromaticities` value, or "" if not recognised."""
    if not isinstance(chromaticities, (tuple, list)) or len(chromaticities) < 6:
        return ""
    try:
        values = [float(v) for v in chromaticities[:6]]
    except (TypeError, ValueError):
        return ""
    for name, known in PRIMARIES.items():
        if all(abs(a - b) <= _TOLERANCE for a, b in zip(values, known)):
            return name
    return ""


def space_primaries(colour_space: str) -> str:
    """The primaries a colour space name implies, or "" when the name does not say."""
    low = colour_space.lower()
    return next((name for fragment, name in _SPACE_PRIMARIES if fragment in low), "")


def window_warning(data: Sequence[int], display: Sequence[int]) -> str:
    """Text when the data window holds none of the display window's pixels, else ""."""
    x, y, w, h = data
    fx, fy, fw, fh = display
    if w > 0 and h > 0 and x < fx + fw and fx < x + w and y < fy + fh and fy < y + h:
        return ""
    return (f"the data window {x},{y} {w}x{h} holds no pixel of the display window "
            f"{fx},{fy} {fw}x{fh}: the model sees a black frame")


def chromaticities_warning(chromaticities: Any, colour_space: str) -> str:
    """Text when the file's primaries contradict the colour space it is read as, else ""."""
    found = primaries_name(chromaticities)
    expected = space_primaries(colour_space) if colour_space else ""
    if not found or not expected or found == expected:
        return ""
    return (f"the plate's chromaticities are {found} primaries, but it is read as "
            f"{colour_space!r} ({expected}): check --input-colorspace")


def plate_warnings(plates: Any, colour_space: str = "") -> list[str]:
    """Warnings about the shot's first frame; `colour_space`: what the plate is read as.

    Reading that header is also a cheap check: a first frame that cannot be used fails
    here (InputError) before a model is loaded.
    """
    info = plates.info(plates.first_frame)
    where = f"{info.path}: frame {plates.first_frame}: "
    texts = [window_warning(info.data_window, info.display_window),
             chromaticities_warning(info.metadata.get("chromaticities"), colour_space)]
    return [where + text for text in texts if text]
