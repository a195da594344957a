"""Half EXR files written by the OpenEXR library, with the header OpenImageIO would write.

A 2K one-channel half matte costs OpenImageIO's writer 27-35 ms of CPU whatever the
compression (most of it copying and thread hand-offs around the encoder), against 13-18 ms
for the OpenEXR library writing the same ZIP pixels itself. Mattes are written once per frame
by every render, so the writes go through OpenEXR; what the header holds stays OpenImageIO's
business: the plate's metadata, OpenImageIO's names for it (`smpte:TimeCode` becomes
`timeCode`, `oiio:ColorSpace` the colour tag) and its types are taken from a one-pixel file
that OpenImageIO writes with the same spec for every matte (about 0.8 ms, in the system temp
folder, removed at once: `fs.scratch_file`). Each kind of header (the attributes' names and
types) is checked once per process: the OpenEXR-written file must read back through
OpenImageIO with the very attributes of the OpenImageIO-written one, else that kind of header
is written by OpenImageIO as before. (OpenEXR also stores the `type` attribute, 29 bytes
that OpenImageIO reads as it reads any scanline file.)
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable

import numpy as np
import OpenEXR
import OpenImageIO as oiio

from ..fs import scratch_file

Header = dict

_CHECKED: dict[tuple, bool] = {}  # header kind -> the OpenEXR write reads back the same
_CHECKED_LOCK = threading.Lock()


def exr_header_for(spec: oiio.ImageSpec) -> Header | None:
    """The OpenEXR header OpenImageIO would write for `spec`, or None when this kind of
    header cannot be written by OpenEXR exactly (the caller then writes with OpenImageIO)."""
    kind = _header_kind(spec)
    with _CHECKED_LOCK:
        known = _CHECKED.get(kind)
    if known is False:
        return None
    try:
        header = _template_header(spec)
        if known is None:
            same = _same_on_reading(spec, header)
            with _CHECKED_LOCK:
                _CHECKED[kind] = same
            if not same:
                return None
    except Exception:  # noqa: BLE001 - this matte goes to OpenImageIO; the next one retries
        return None    # (a full or unwritable temp folder may be passing)
    return _with_windows(header, spec)


def write_exr(path: str, header: Header, pixels: np.ndarray) -> None:
    """Write (H, W, 1) alpha or (H, W, 4) RGBA half `pixels` to `path` with `header`.

    Raises what the OpenEXR library raises (the caller words it for the user).
    """
    if pixels.dtype != np.float16 or pixels.ndim != 3 or pixels.shape[2] not in (1, 4):
        raise ValueError(f"expected (H, W, 1|4) half pixels, got {pixels.dtype} {pixels.shape}")
    planes = ({"A": pixels[..., 0]} if pixels.shape[2] == 1
              else {name: np.ascontiguousarray(pixels[..., i]) for i, name in enumerate("RGBA")})
    OpenEXR.File(header, planes, num_threads=1).write(path)


def _header_kind(spec: oiio.ImageSpec) -> tuple:
    """What decides whether a header writes back exactly: channels and attribute types."""
    return (tuple(spec.channelnames), str(spec.format),
            tuple((a.name, str(a.type)) for a in spec.extra_attribs))


def _one_pixel_spec(spec: oiio.ImageSpec) -> oiio.ImageSpec:
    """`spec` with its attributes, shrunk to one pixel at the origin."""
    small = oiio.ImageSpec(spec)
    small.width = small.height = small.full_width = small.full_height = 1
    small.x = small.y = small.full_x = small.full_y = 0
    return small


def _in_temp_file(read: Callable[[str], Any], *writes: Callable[[str], None]) -> list:
    """Fill one fresh local temp file per `writes` entry, return `read` of each path, and
    remove the files whatever happens."""
    with contextlib.ExitStack() as files:
        paths: list[str] = []
        for write in writes:
            path = files.enter_context(scratch_file("vrmbg-header-", ".exr"))
            paths.append(path)
            write(path)
        return [read(path) for path in paths]


def _write_with_oiio(path: str, spec: oiio.ImageSpec) -> None:
    """A one-pixel file of `spec` written by OpenImageIO."""
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError("OpenImageIO cannot write the header template")
    ok = out.write_image(np.zeros((1, 1, spec.nchannels), np.float16))
    if not (out.close() and ok):
        raise RuntimeError("OpenImageIO cannot write the header template")


def _template_header(spec: oiio.ImageSpec) -> Header:
    """The header of a one-pixel file OpenImageIO writes with `spec`'s attributes."""
    [header] = _in_temp_file(lambda p: dict(OpenEXR.File(p, header_only=True).header()),
                             lambda p: _write_with_oiio(p, _one_pixel_spec(spec)))
    header.pop("channels", None)  # set from the pixels when writing
    return header


def _with_windows(header: Header, spec: oiio.ImageSpec) -> Header:
    """`header` with `spec`'s data and display windows (inclusive corners, as EXR has them)."""
    def box(x: int, y: int, width: int, height: int) -> tuple:
        return (np.array([x, y], np.int32), np.array([x + width - 1, y + height - 1], np.int32))

    header = dict(header)
    header["dataWindow"] = box(spec.x, spec.y, spec.width, spec.height)
    header["displayWindow"] = box(spec.full_x, spec.full_y, spec.full_width, spec.full_height)
    return header


def _attributes_read_back(path: str) -> list[tuple[str, str, str]]:
    """Every attribute OpenImageIO reads from `path`, as comparable text (but the time of
    writing, which OpenImageIO stamps on each file)."""
    image = oiio.ImageInput.open(path)
    if image is None:
        raise RuntimeError(oiio.geterror())
    try:
        spec = image.spec()
        return sorted((a.name, str(a.type), repr(a.value)) for a in spec.extra_attribs
                      if a.name != "DateTime") + [
            ("channels", "", repr(tuple(spec.channelnames)))]
    finally:
        image.close()


def _same_on_reading(spec: oiio.ImageSpec, header: Header) -> bool:
    """Whether a one-pixel file written by OpenEXR with `header` reads back through
    OpenImageIO with the same attributes as the one OpenImageIO writes itself."""
    small = _one_pixel_spec(spec)
    ours, theirs = _in_temp_file(
        _attributes_read_back,
        lambda p: write_exr(p, _with_windows(header, small),
                            np.zeros((1, 1, small.nchannels), np.float16)),
        lambda p: _write_with_oiio(p, small))
    return ours == theirs
