"""Writing and reading matte EXRs.

A matte is a half-float EXR, by default one channel `A`; with the plate's RGB it is
`R,G,B,A` premultiplied (plate x alpha). Mattes are data: values are never colour
converted. The plate's frame context is kept so a matte drops onto its plate in Nuke or
Blender: the display window, the data window (clipped to the display window: the matte
has no pixels outside it, so overscan is not reproduced, while a cropped data window/bbox is
kept), timecode, frame rate, camera and custom attributes. What describes the source file
rather than the matte is dropped: compression, colour space (`oiio:ColorSpace`, interop
IDs, chromaticities of an alpha-only matte), format-specific (`dpx:`, `openexr:`, `tiff:`...)
and tool fields. Caller attributes are added as `vrmbg:<name>` (the matte's stamp: key, start,
tier, chain... of the cache, shot and identity of a render's output), and `read_matte_stamp`
reads them back, so the stamp is written and read here. Writes are atomic, and a matte
counts as written only when the file is whole (`exr_whole.is_whole`: a writer that ran out
of disk can report success on a file cut short); a file that is not is a failed write.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any, Mapping

import numpy as np
import OpenImageIO as oiio

from ..fs import atomic_write, disk_full_error
from ..errors import InputError, OutputError, UsageError, library_text
from .exr_whole import is_whole
from .exr_writer import exr_header_for, write_exr
from .halfs import copy_into, to_half
from .image_reader import ImageReader
from .plate_types import ImageInfo, Window, metadata_fps

STAMP_PREFIX = "vrmbg:"  # of the attributes vrmbg adds to a matte (its stamp)
FPS_ATTRIBUTE = "framesPerSecond"  # OpenEXR's standard frame-rate attribute (rational)
COMPRESSIONS = ("zip", "zips", "piz", "rle", "none", "dwaa", "dwab")

_DROP_PREFIXES = ("oiio:", "openexr:", "dpx:", "tiff:", "png:", "jpeg:", "exif:", "iptc:",
                  "iccprofile", "xmp:", "photoshop:", "gps:", "heif:", "raw:")
_DROP_KEYS = {"compression", "colorinteropid", "name", "type", "version", "chunkcount",
              "tiles", "dwacompressionlevel", "software", "datetime", "orientation",
              "xresolution", "yresolution", "resolutionunit", "planarconfig",
              "document name", "documentname", "hostcomputer"}


def write_matte(path: str, alpha: np.ndarray, *, like: ImageInfo | None = None,
                rgb: np.ndarray | None = None, compression: str = "zip",
                attributes: Mapping[str, object] | None = None, colorspace: str = "") -> None:
    """Write a display-window matte (H, W) as a half EXR at `path`, atomically.

    `like` (the plate's ImageInfo) gives the windows and metadata to keep; `rgb` (H, W, 3)
    switches to premultiplied RGBA; `attributes` become `vrmbg:*` attributes; `colorspace`
    tags the RGB's colour space (`oiio:ColorSpace`, written as the EXR's colour tag). OutputError
    names the path when the matte cannot be written; UsageError for a bad compression.
    """
    path = os.fspath(path)
    if compression not in COMPRESSIONS:
        raise UsageError(f"unknown EXR compression {compression!r} "
                         f"(choose one of {', '.join(COMPRESSIONS)})")
    if os.path.splitext(path)[1].lower() != ".exr":
        raise OutputError("mattes are written as EXR: use a .exr file name", path=path)
    pixels = _matte_pixels(path, alpha, rgb)
    display = like.display_window if like else (0, 0, pixels.shape[1], pixels.shape[0])
    if (display[2], display[3]) != (pixels.shape[1], pixels.shape[0]):
        raise OutputError(f"matte is {pixels.shape[1]}x{pixels.shape[0]} but the plate's "
                          f"display window is {display[2]}x{display[3]}", path=path)
    data = _matte_data_window(like.data_window, display) if like else display
    spec = _matte_spec(data, display, pixels.shape[2], compression)
    if like is not None:
        _copy_metadata(spec, like, keep_colour=rgb is not None)
    for key, value in (attributes or {}).items():
        _set_vrmbg_attribute(spec, key, value)
    if colorspace:
        spec.attribute("oiio:ColorSpace", colorspace)
    x0, y0 = data[0] - display[0], data[1] - display[1]
    window = np.ascontiguousarray(pixels[y0:y0 + data[3], x0:x0 + data[2]])
    atomic_write(path, lambda tmp: _write_whole_exr(tmp, spec, window, path))


def read_matte(path: str) -> np.ndarray:
    """The alpha of a matte EXR as (H, W) float32 over its display window.

    Reads channel `A` (or the only channel of a one-channel file); outside the data window
    alpha is 0. InputError names the path if it is missing, unreadable or has no alpha.
    """
    path = os.fspath(path)
    with ImageReader(path, None) as reader:
        channels = reader.specs[0].channelnames
        name = "A" if "A" in channels else (channels[0] if len(channels) == 1 else "")
        if not name:
            raise InputError(f"no alpha channel A (channels: {', '.join(channels)})",
                             path=path)
        info = reader.info_for_channels(0, [name])
        return np.ascontiguousarray(reader.pixels(info)[..., 0])


def read_matte_stamp(path: str) -> dict[str, Any] | None:
    """The `vrmbg:*` attributes of a matte (key, start, tier, chain...), or None if unreadable.

    Only the header is read, so checking a cached frame costs about a millisecond.
    """
    if not os.path.isfile(path):
        return None
    image = oiio.ImageInput.open(path)
    if image is None:
        library_text(oiio.geterror)  # clear the global error message
        return None
    try:
        return {attr.name[len(STAMP_PREFIX):]: attr.value for attr in image.spec().extra_attribs
                if attr.name.startswith(STAMP_PREFIX)}
    finally:
        image.close()


def _matte_pixels(path: str, alpha: np.ndarray, rgb: np.ndarray | None) -> np.ndarray:
    """(H, W, 1) alpha or (H, W, 4) premultiplied RGBA, as half."""
    alpha = np.asarray(alpha)
    if alpha.ndim == 3 and alpha.shape[2] == 1:
        alpha = alpha[..., 0]
    if alpha.ndim != 2:
        raise OutputError(f"matte must be (height, width), got shape {alpha.shape}", path=path)
    alpha = alpha.astype(np.float32, copy=False)
    if rgb is None:
        return to_half(alpha)[..., None]
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.shape != alpha.shape + (3,):
        raise OutputError(f"plate RGB {rgb.shape} does not match the matte {alpha.shape}",
                          path=path)
    out = np.empty(alpha.shape + (4,), dtype=np.float16)
    copy_into(out[..., :3], rgb * alpha[..., None])
    copy_into(out[..., 3], alpha)
    return out


def _matte_data_window(data: Window, display: Window) -> Window:
    """The plate's data window clipped to the display window (the display if disjoint)."""
    x0, y0 = max(data[0], display[0]), max(data[1], display[1])
    x1 = min(data[0] + data[2], display[0] + display[2])
    y1 = min(data[1] + data[3], display[1] + display[3])
    if x0 >= x1 or y0 >= y1:
        return display
    return (x0, y0, x1 - x0, y1 - y0)


def _matte_spec(data: Window, display: Window, nchannels: int,
                compression: str) -> oiio.ImageSpec:
    """Half EXR spec with the windows, channel names and compression of a matte."""
    spec = oiio.ImageSpec(data[2], data[3], nchannels, oiio.HALF)
    spec.x, spec.y = data[0], data[1]
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    spec.channelnames = ("A",) if nchannels == 1 else ("R", "G", "B", "A")
    spec.alpha_channel = nchannels - 1
    spec.attribute("compression", compression)
    return spec


def kept_metadata(like: ImageInfo, *, keep_colour: bool = False) -> dict[str, Any]:
    """The plate metadata a matte keeps (see the module docstring for what is dropped)."""
    kept = {}
    for key, value in like.metadata.items():
        low = key.lower()
        if low in _DROP_KEYS or low.startswith(_DROP_PREFIXES):
            continue
        if low == "chromaticities" and not keep_colour:
            continue
        kept[key] = value
    return kept


def _copy_metadata(spec: oiio.ImageSpec, like: ImageInfo, *, keep_colour: bool) -> None:
    """Copy the kept plate metadata onto `spec` with its original OIIO types."""
    for key, value in kept_metadata(like, keep_colour=keep_colour).items():
        type_name = like.attribute_types.get(key) or _type_name(value)
        if type_name:
            try:
                spec.attribute(key, oiio.TypeDesc(type_name), value)
            except (TypeError, ValueError):  # a value OpenImageIO cannot write back: drop it
                continue
    if FPS_ATTRIBUTE not in like.metadata:  # the standard EXR name, whatever the plate had
        fps = metadata_fps(like.metadata)
        if fps:
            rate = Fraction(fps).limit_denominator(1001)
            spec.attribute(FPS_ATTRIBUTE, oiio.TypeRational, (rate.numerator, rate.denominator))


def _type_name(value: Any) -> str:
    """OIIO type name for a plain Python value (used when the source type is unknown)."""
    if isinstance(value, bool) or isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, tuple) and value:
        if all(isinstance(v, str) for v in value):
            return f"string[{len(value)}]"
        if all(isinstance(v, int) for v in value):
            return f"int[{len(value)}]"
        if all(isinstance(v, (int, float)) for v in value):
            return f"float[{len(value)}]"
    return ""


def _set_vrmbg_attribute(spec: oiio.ImageSpec, key: str, value: object) -> None:
    """Add one caller attribute as `vrmbg:<key>` (int, float or string)."""
    name = key if key.startswith(STAMP_PREFIX) else f"{STAMP_PREFIX}{key}"
    if isinstance(value, bool):
        spec.attribute(name, int(value))
    elif isinstance(value, (int, np.integer)):
        spec.attribute(name, int(value))
    elif isinstance(value, (float, np.floating)):
        spec.attribute(name, float(value))
    else:
        spec.attribute(name, str(value))


def _writer_error(out: oiio.ImageOutput) -> str:
    """OpenImageIO's error of a failed write, on one line."""
    return library_text(out.geterror, "unknown error")


def _write_failure(what: str, reason: str, tmp: str, path: str) -> OutputError:
    """The OutputError of a failed matte write, in terms a user can act on: a full disk when
    that is why, else OpenImageIO's reason naming the matte (not our temp file). A file that
    cannot even be opened is only called a full disk when OpenImageIO says so."""
    full = disk_full_error(path, what, reason=reason, check_free=what != "open for writing")
    return full or OutputError(f"cannot {what}: {reason.replace(tmp, os.path.basename(path))}",
                               path=path)


def _write_whole_exr(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray, path: str) -> None:
    """`_write_exr`, then check that the file holds every chunk its header promises: a file
    cut short (seen after a failed OpenEXR write, from the fallback writer, on a full disk)
    is a failed write, reported as a full disk when that is why (the temp file is then
    removed by `fs.atomic_write` and nothing replaces `path`)."""
    _write_exr(tmp, spec, pixels, path)
    if not is_whole(tmp):
        size = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        raise _write_failure("finish the file",
                             f"the file written is cut short ({size} bytes)", tmp, path)


def _write_exr(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray, path: str) -> None:
    """Write `pixels` to the temp file `tmp` (OutputError naming the final `path`): through
    the OpenEXR library when it writes this header exactly (`exr_writer`), else, or when
    that write fails for any reason, through OpenImageIO, whose failure is reported (a full
    disk is then named as such)."""
    header = exr_header_for(spec)
    if header is not None:
        try:
            write_exr(tmp, header, pixels)
            return
        except Exception:  # noqa: BLE001 - OpenImageIO writes it instead, or says why not
            pass
    _write_exr_with_oiio(tmp, spec, pixels, path)


def _write_exr_with_oiio(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray,
                         path: str) -> None:
    """`_write_exr` through OpenImageIO's writer."""
    out = oiio.ImageOutput.create(tmp)
    if out is None:
        raise OutputError(f"cannot create an EXR writer: {library_text(oiio.geterror)}",
                          path=path)

    def failure(what: str) -> OutputError:
        return _write_failure(what, _writer_error(out), tmp, path)

    try:
        if not out.open(tmp, spec):
            raise failure("open for writing")
        if not out.write_image(pixels):
            raise failure("write pixels")
    except BaseException:
        out.close()
        raise
    if not out.close():
        raise failure("finish the file")
