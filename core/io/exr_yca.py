"""Luminance/chroma EXRs (channels `Y`, `RY`, `BY`, chroma subsampled 2x2) read as RGB.

Cameras and older pipelines write these through OpenEXR's RGBA interface; OpenImageIO
cannot open them ("Subsampled channels are not supported"), so they are read with the
OpenEXR Python bindings and RGB is reconstructed the way OpenEXR's own RGBA reader defines
it (ImfRgbaYca):

1. chroma samples sit on even rows and columns; the missing columns of each sampled row,
   then the missing rows, are filled with OpenEXR's 14-tap half-band filter (edge samples
   repeated past the borders);
2. `R = (RY + 1) Y`, `B = (BY + 1) Y`, `G = (Y - R wr - B wb) / wg`, with the luminance
   weights of the file's `chromaticities` (Rec.709 when absent); a pixel whose chroma is
   0 is grey (R = G = B = Y);
3. a pixel much more saturated than its four diagonal neighbours is desaturated towards
   them, as OpenEXR does to hide ringing at sharp chroma edges.

Every stage rounds to half, as OpenEXR's half-float RGBA buffers do. `YcaInput` shows such
a file to `image_reader.ImageReader` as an image whose channels are `R, G, B` (`layer.R`...
for a prefixed group) beside the file's other full-resolution channels.
"""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any, Sequence

import numpy as np
import OpenImageIO as oiio

from ..errors import library_text

# OpenEXR's reconstruction filter: taps at +-1, +-3, ... +-13 samples around a missing one.
_TAPS = np.array([0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128],
                 dtype=np.float32)
REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)  # red, green, blue, white xy
SUBSAMPLED_ERROR = "Subsampled channels are not supported"
_STDOUT_LOCK = threading.Lock()
_REC709_FALLBACK = np.array([0.2126, 0.7152, 0.0722], np.float32)


def luminance_weights(chromaticities: Sequence[float] | None) -> np.ndarray:
    """Weights of R, G, B in Y for primaries/white `(rx, ry, gx, gy, bx, by, wx, wy)`.

    The Y row of the RGB -> XYZ matrix normalised to sum 1 (OpenEXR's computeYw); Rec.709
    when absent or degenerate (no white, collinear primaries).
    """
    values = tuple(float(v) for v in (chromaticities if chromaticities is not None
                                      else REC709))
    rx, ry, gx, gy, bx, by, wx, wy = values[:8] if len(values) >= 8 else REC709
    # Columns: each primary's XYZ up to a scale; solve the scales that sum to the white.
    primaries = np.array([[rx, gx, bx], [ry, gy, by],
                          [1 - rx - ry, 1 - gx - gy, 1 - bx - by]], np.float64)
    try:
        white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
        scale = np.linalg.solve(primaries, white)
    except (ZeroDivisionError, np.linalg.LinAlgError):
        return luminance_weights(REC709) if chromaticities is not None else _REC709_FALLBACK
    weights = scale * primaries[1]
    if not np.all(np.isfinite(weights)) or abs(weights.sum()) < 1e-9:
        return luminance_weights(None)
    return (weights / weights.sum()).astype(np.float32)


def _half(values: np.ndarray) -> np.ndarray:
    """Values rounded to half precision, kept as float32."""
    return values.astype(np.float16).astype(np.float32)


def _fill_odd(samples: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Full-resolution chroma along `axis` from samples at even positions (filter in between)."""
    samples = np.moveaxis(samples, axis, 0)
    count = samples.shape[0]
    padded = np.concatenate([np.repeat(samples[:1], 7, axis=0), samples,
                             np.repeat(samples[-1:], 8, axis=0)])
    odd = np.zeros_like(samples)
    for tap, weight in enumerate(_TAPS):  # odd position between samples m and m + 1
        odd += weight * (padded[7 - tap:7 - tap + count] + padded[8 + tap:8 + tap + count])
    full = np.empty((2 * count,) + samples.shape[1:], np.float32)
    full[0::2] = samples
    full[1::2] = _half(odd)
    return np.moveaxis(full[:size], 0, axis)


def reconstruct_chroma(samples: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) chroma from its 2x2-subsampled samples, as OpenEXR reconstructs it."""
    rows = _fill_odd(samples.astype(np.float32), width, axis=1)
    return _fill_odd(rows, height, axis=0)


def yca_to_rgb(luma: np.ndarray, ry: np.ndarray, by: np.ndarray,
               weights: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB from full-resolution Y, RY, BY (OpenEXR's YCAtoRGBA + saturation fix)."""
    wr, wg, wb = (float(w) for w in weights)
    luma = luma.astype(np.float32)
    red = (ry + 1.0) * luma
    blue = (by + 1.0) * luma
    green = _half((luma - red * wr - blue * wb) / wg)
    red, blue = _half(red), _half(blue)
    grey = (ry == 0) & (by == 0)
    rgb = np.stack([np.where(grey, luma, red), np.where(grey, luma, green),
                    np.where(grey, luma, blue)], axis=-1)
    return _fix_saturation(rgb, weights)


def _saturation(rgb: np.ndarray) -> np.ndarray:
    """1 - min/max per pixel (0 where max <= 0)."""
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(high > 0, 1.0 - low / np.where(high > 0, high, 1.0), 0.0)


def _fix_saturation(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Desaturate pixels far more saturated than their diagonal neighbours (OpenEXR's rule)."""
    height, width = rgb.shape[:2]
    sat = _saturation(rgb)
    above = np.maximum(np.arange(height) - 1, 0)
    below = np.arange(height) + 1
    below[below >= height] = max(height - 2, 0)  # OpenEXR re-reads the row above the last
    left = np.maximum(np.arange(width) - 1, 0)
    right = np.minimum(np.arange(width) + 1, width - 1)
    mean = np.minimum(1.0, 0.25 * (sat[above][:, left] + sat[above][:, right]
                                   + sat[below][:, left] + sat[below][:, right]))
    limit = np.minimum(1.0, 1.0 - (1.0 - mean) * 0.25)
    fix = (sat > mean) & (sat > limit)
    if not fix.any():
        return rgb
    pixels = rgb[fix]
    factor = (limit[fix] / sat[fix])[:, None]
    high = pixels.max(axis=-1, keepdims=True)
    out = _half(np.maximum(high - (high - pixels) * factor, 0.0))
    y_in, y_out = pixels @ weights, out @ weights
    scale = np.where(y_out > 0, y_in / np.where(y_out > 0, y_out, 1.0), 1.0)[:, None]
    result = rgb.copy()
    result[fix] = _half(out * scale)
    return result


# --------------------------------------------------------------------------- the reader

def _groups(channels: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Prefix -> (Y, RY, BY) channel names for every luminance/chroma group in a part."""
    groups = {}
    for name in channels:
        prefix, _dot, base = name.rpartition(".")
        lead = prefix + "." if prefix else ""
        if base == "Y" and lead + "RY" in channels and lead + "BY" in channels:
            groups[lead] = (name, lead + "RY", lead + "BY")
    return groups


class YcaInput:
    """The few `oiio.ImageInput` calls `image_reader.ImageReader` makes, for a luminance/chroma
    EXR read through OpenEXR (every part decoded at open; they are small camera frames)."""

    def __init__(self, path: str) -> None:
        import OpenEXR

        self.path = path
        self._error = ""
        expected = len(OpenEXR.File(path, header_only=True).parts)
        # The bindings skip a part they cannot decode and print why (to sys.stdout): keep
        # that text as the error instead of letting it into our output.
        with _STDOUT_LOCK, contextlib.redirect_stdout(io.StringIO()) as said:
            handle = OpenEXR.File(path, separate_channels=True)
        if len(handle.parts) != expected or not expected:
            reason = said.getvalue().replace("Warning: Exception raised reading pixel data", "")
            raise ValueError("cannot decode pixels: " + (reason.strip(" -") or "no parts"))
        self._parts = [_decode_part(part) for part in handle.parts]
        self._specs = [spec for spec, _pixels in self._parts]
        self._current = 0

    def spec(self) -> oiio.ImageSpec:
        """The spec of the current part."""
        return self._specs[self._current]

    def seek_subimage(self, index: int, _level: int) -> bool:
        """Make part `index` current."""
        if not 0 <= index < len(self._specs):
            return False
        self._current = index
        return True

    def format_name(self) -> str:
        """Always `openexr`."""
        return "openexr"

    def geterror(self) -> str:
        """The last error (none: decoding happened at open)."""
        return self._error

    def read_image(self, part: int, _miplevel: int, first: int, last: int,
                   kind: Any) -> np.ndarray:
        """Channels `first..last-1` of part `part`: float16 when half is asked, else float32."""
        pixels = self._parts[part][1][..., first:last]
        return pixels.astype(np.float16 if kind == oiio.HALF else np.float32)

    def close(self) -> None:
        """Release the decoded pixels."""
        self._parts = []


def _decode_part(part: Any) -> tuple[oiio.ImageSpec, np.ndarray]:
    """(spec, (H, W, C) float32 pixels) of one part: groups as RGB, other channels as stored."""
    header = part.header
    (x0, y0), (x1, y1) = (tuple(int(v) for v in corner) for corner in header["dataWindow"])
    width, height = x1 - x0 + 1, y1 - y0 + 1
    channels = part.channels
    weights = luminance_weights(header.get("chromaticities"))
    names, planes = [], []
    groups = _groups(channels)
    used = {n for group in groups.values() for n in group}
    for lead, (luma, ry, by) in groups.items():
        full = [np.asarray(channels[luma].pixels, np.float32)]
        for name in (ry, by):
            full.append(reconstruct_chroma(np.asarray(channels[name].pixels), height, width))
        rgb = yca_to_rgb(full[0], full[1], full[2], weights)
        names += [lead + c for c in ("R", "G", "B")]
        planes += [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    for name, channel in channels.items():
        if name in used:
            continue
        if channel.xSampling != 1 or channel.ySampling != 1:
            continue  # other subsampled channels have no RGB meaning
        names.append(name)
        planes.append(np.asarray(channel.pixels, np.float32))
    spec = oiio.ImageSpec(width, height, len(names), oiio.HALF)
    spec.x, spec.y = x0, y0
    (fx0, fy0), (fx1, fy1) = (tuple(int(v) for v in c) for c in header["displayWindow"])
    spec.full_x, spec.full_y = fx0, fy0
    spec.full_width, spec.full_height = fx1 - fx0 + 1, fy1 - fy0 + 1
    spec.channelnames = tuple(names)
    spec.attribute("openexr:luminanceChroma", ", ".join(
        n for group in groups.values() for n in group))
    if header.get("name"):
        spec.attribute("name", str(header["name"]))
    chroma = header.get("chromaticities")
    if chroma is not None:
        spec.attribute("chromaticities", oiio.TypeDesc("float[8]"),
                       tuple(float(v) for v in chroma))
    if "view" in header:
        spec.attribute("view", str(header["view"]))
    if "multiView" in header:
        views = tuple(str(v) for v in header["multiView"])
        spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), views)
    pixels = np.stack(planes, axis=-1) if planes else np.zeros((height, width, 0), np.float32)
    return spec, np.ascontiguousarray(pixels)


def open_yca(path: str) -> tuple[YcaInput | None, str]:
    """A YcaInput for `path`, or (None, why it cannot be read)."""
    try:
        return YcaInput(path), ""
    except ImportError:
        return None, "luminance/chroma EXRs need the OpenEXR Python package (pip install OpenEXR)"
    except Exception as exc:  # the OpenEXR bindings raise plain RuntimeError/ValueError
        return None, library_text(lambda: str(exc), type(exc).__name__)
