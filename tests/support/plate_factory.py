"""Small plate writers for tests: EXR (half/float, tiled, multi-part, layered, data windows,
metadata) and DPX sequences written with OpenImageIO straight into a pytest `tmp_path`, and
movies written with PyAV (`write_video`).

Import from any test file: `from plate_factory import write_exr, write_exr_sequence, ...`.
Pixel values come from `ramp_rgb` so every frame, pixel and channel differs and a reader that
mixes channels, rows or frames up is caught.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import OpenImageIO as oiio

Window = tuple[int, int, int, int]  # x, y, width, height

TIMECODE_01 = (0x01000000, 0)  # 01:00:00:00 as packed SMPTE BCD


def ramp_rgb(height: int, width: int, frame: int = 0, channels: int = 3,
             dtype: type = np.float32) -> np.ndarray:
    """Distinct, deterministic pixel values (H, W, C): x ramp, y ramp, frame and channel terms."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [(xx / max(width, 1)) * (c + 1) * 0.5 + (yy / max(height, 1)) * 0.25
              + 0.01 * (frame % 97) + 0.1 * c for c in range(channels)]
    return np.ascontiguousarray(np.stack(planes, axis=-1).astype(dtype))


@dataclass
class Part:
    """One EXR part: its channel names, pixels (H, W, C) and optional name/windows/tiling."""

    channels: Sequence[str]
    pixels: np.ndarray
    name: str = ""
    data_window: Window | None = None  # default: the pixels' size at (0, 0)
    display_window: Window | None = None  # default: the data window
    tiled: bool = False
    attributes: Mapping[str, tuple[str, object]] = field(default_factory=dict)


def make_spec(part: Part, pixel_type: str = "half", compression: str = "zip") -> oiio.ImageSpec:
    """The ImageSpec for one part: windows, channel names, compression and extra attributes."""
    height, width = part.pixels.shape[:2]
    x, y, w, h = part.data_window or (0, 0, width, height)
    assert (w, h) == (width, height), "pixels must match the data window"
    spec = oiio.ImageSpec(w, h, len(part.channels), oiio.TypeDesc(pixel_type))
    spec.x, spec.y = x, y
    fx, fy, fw, fh = part.display_window or (x, y, w, h)
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = fx, fy, fw, fh
    spec.channelnames = tuple(part.channels)
    spec.attribute("compression", compression)
    if part.name:
        spec.attribute("name", part.name)
    if part.tiled:
        spec.tile_width, spec.tile_height = 32, 32
    for key, (type_name, value) in part.attributes.items():
        spec.attribute(key, oiio.TypeDesc(type_name), value)
    return spec


def write_parts(path: str | os.PathLike, parts: Sequence[Part], pixel_type: str = "half",
                compression: str = "zip") -> str:
    """Write one EXR file holding `parts` (single- or multi-part); returns the path."""
    path = os.fspath(path)
    specs = [make_spec(p, pixel_type, compression) for p in parts]
    out = oiio.ImageOutput.create(path)
    assert out is not None, oiio.geterror()
    ok = out.open(path, specs) if len(specs) > 1 else out.open(path, specs[0])
    assert ok, out.geterror()
    np_type = np.float16 if pixel_type == "half" else np.float32
    for index, (part, spec) in enumerate(zip(parts, specs)):
        if index:
            assert out.open(path, spec, "AppendSubimage"), out.geterror()
        assert out.write_image(np.ascontiguousarray(part.pixels.astype(np_type))), out.geterror()
    out.close()
    return path


def write_exr(path: str | os.PathLike, pixels: np.ndarray, *,
              channels: Sequence[str] = ("R", "G", "B"), pixel_type: str = "half",
              compression: str = "zip", data_window: Window | None = None,
              display_window: Window | None = None, tiled: bool = False,
              attributes: Mapping[str, tuple[str, object]] | None = None) -> str:
    """Write a single-part EXR; `attributes` maps name -> (OIIO type name, value)."""
    part = Part(channels, pixels, data_window=data_window, display_window=display_window,
                tiled=tiled, attributes=attributes or {})
    return write_parts(path, [part], pixel_type, compression)


def frame_path(pattern: str, frame: int, padding: int = 4) -> str:
    """`pattern` with its `####` replaced by the padded frame (negative frames as `-001`)."""
    return pattern.replace("#" * padding, f"{frame:0{padding}d}")


def write_exr_sequence(folder: str | os.PathLike, frames: Iterable[int], *,
                       name: str = "plate.####.exr", size: tuple[int, int] = (48, 32),
                       channels: Sequence[str] = ("R", "G", "B"), **kwargs: object) -> str:
    """Write `ramp_rgb` frames as EXRs named by `name` (with `####`); returns the pattern path.

    `size` is (width, height) of the data window; extra keywords go to `write_exr`.
    """
    pattern = os.path.join(os.fspath(folder), name)
    width, height = size
    for frame in frames:
        pixels = ramp_rgb(height, width, frame, channels=len(channels))
        write_exr(frame_path(pattern, frame), pixels, channels=channels, **kwargs)
    return pattern


def write_dpx(path: str | os.PathLike, pixels: np.ndarray, *, bits: int = 10,
              attributes: Mapping[str, tuple[str, object]] | None = None) -> str:
    """Write an RGB DPX of `bits` (10/12/16) from float pixels in [0, 1]; returns the path."""
    path = os.fspath(path)
    height, width = pixels.shape[:2]
    spec = oiio.ImageSpec(width, height, 3, oiio.UINT16)
    spec.attribute("oiio:BitsPerSample", bits)
    for key, (type_name, value) in (attributes or {}).items():
        spec.attribute(key, oiio.TypeDesc(type_name), value)
    out = oiio.ImageOutput.create(path)
    assert out is not None and out.open(path, spec), oiio.geterror()
    codes = np.clip(np.round(pixels * 65535.0), 0, 65535).astype(np.uint16)
    assert out.write_image(np.ascontiguousarray(codes)), out.geterror()
    out.close()
    return path


def write_dpx_sequence(folder: str | os.PathLike, frames: Iterable[int], *,
                       name: str = "plate.####.dpx", size: tuple[int, int] = (48, 32),
                       bits: int = 10) -> str:
    """Write `ramp_rgb` frames (clipped to [0, 1]) as DPX; returns the pattern path."""
    pattern = os.path.join(os.fspath(folder), name)
    width, height = size
    for frame in frames:
        pixels = np.clip(ramp_rgb(height, width, frame), 0.0, 1.0)
        write_dpx(frame_path(pattern, frame), pixels, bits=bits)
    return pattern


def write_plain(path: str | os.PathLike, pixels: np.ndarray, pixel_type: str = "uint8",
                unassociated: bool = False) -> str:
    """Write PNG/TIFF/JPEG (format from the extension) from float pixels in [0, 1].

    `unassociated` stores colour as given next to an alpha channel (not divided by alpha).
    """
    path = os.fspath(path)
    height, width, nchannels = pixels.shape
    spec = oiio.ImageSpec(width, height, nchannels, oiio.TypeDesc(pixel_type))
    if unassociated:
        spec.attribute("oiio:UnassociatedAlpha", 1)
    out = oiio.ImageOutput.create(path)
    assert out is not None and out.open(path, spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels.astype(np.float32))), out.geterror()
    out.close()
    return path


VIDEO_709 = {"dst_colorspace": "ITU709", "dst_color_range": "MPEG"}  # Rec.709 limited range


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], *, codec: str,
                pix_fmt: str, frame_format: str, rate: int = 24,
                options: Mapping[str, str] | None = None,
                reformat: Mapping[str, str] | None = None, timecode: str = "") -> str:
    """Encode `frames` (arrays in PyAV's `frame_format`, e.g. rgb24 or rgba64le) with PyAV,
    independently of core/movie.py; returns the path.

    `reformat` converts each frame to `pix_fmt` first with those reformatter options (e.g.
    `VIDEO_709`); without it the encoder converts. A `.mov` path is written as QuickTime.
    """
    import av
    from av.video.reformatter import ColorRange, Colorspace

    path = os.fspath(path)
    frames = list(frames)
    convert = {}
    if reformat is not None:
        convert = {"format": pix_fmt}
        if "dst_colorspace" in reformat:
            convert["dst_colorspace"] = getattr(Colorspace, reformat["dst_colorspace"])
        if "dst_color_range" in reformat:
            convert["dst_color_range"] = getattr(ColorRange, reformat["dst_color_range"])
    with av.open(path, "w", format="mov" if path.endswith(".mov") else None) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = dict(options)
        if timecode:
            stream.metadata["timecode"] = timecode
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format=frame_format)
            if convert:
                frame = frame.reformat(**convert)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_raw_exr(path: str | os.PathLike, planes: Mapping[str, np.ndarray], *,
                  sampling: Mapping[str, tuple[int, int]] | None = None,
                  size: tuple[int, int] | None = None,
                  attributes: Iterable[tuple[str, str, bytes]] = ()) -> str:
    """Write an uncompressed scanline EXR byte by byte (half channels, any x/y sampling).

    For what OpenImageIO cannot write and the OpenEXR bindings refuse to (their writer
    demands one shape for every channel): luminance/chroma files with `RY`/`BY` at half
    resolution. `planes` maps channel name -> (H/ys, W/xs) samples; `size` is (width,
    height) of the full image (default: the first full-resolution plane); `attributes`
    adds (name, type, raw value bytes) header attributes such as chromaticities.
    """
    import struct

    sampling = dict(sampling or {})
    names = sorted(planes)
    if size is None:
        full = next(planes[n] for n in names if sampling.get(n, (1, 1)) == (1, 1))
        size = (full.shape[1], full.shape[0])
    width, height = size

    def attribute(name: str, kind: str, value: bytes) -> bytes:
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value

    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, *sampling.get(n, (1, 1)))
                      for n in names) + b"\0"
    box = struct.pack("<4i", 0, 0, width - 1, height - 1)
    header = (attribute("channels", "chlist", chlist)
              + attribute("compression", "compression", b"\0")
              + attribute("dataWindow", "box2i", box) + attribute("displayWindow", "box2i", box)
              + attribute("lineOrder", "lineOrder", b"\0")
              + attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0))
              + attribute("screenWindowCenter", "v2f", struct.pack("<2f", 0.0, 0.0))
              + attribute("screenWindowWidth", "float", struct.pack("<f", 1.0))
              + b"".join(attribute(*a) for a in attributes) + b"\0")
    chunks = []
    for y in range(height):
        line = b""
        for name in names:
            xs, ys = sampling.get(name, (1, 1))
            if y % ys == 0:
                line += np.ascontiguousarray(planes[name][y // ys], dtype="<f2").tobytes()
        chunks.append(struct.pack("<ii", y, len(line)) + line)
    start = 8 + len(header) + 8 * height
    offsets, position = [], start
    for chunk in chunks:
        offsets.append(position)
        position += len(chunk)
    data = (b"\x76\x2f\x31\x01" + struct.pack("<I", 2) + header
            + struct.pack(f"<{height}Q", *offsets) + b"".join(chunks))
    with open(path, "wb") as handle:
        handle.write(data)
    return os.fspath(path)
