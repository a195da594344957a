"""One image file opened through OpenImageIO (EXR, DPX, TIFF, PNG, JPEG): validation, the
part/layer choice and pixel decoding.

What a reader gets, and why:

- **Display window.** The model sees the frame the artist sees: `Plate.rgb` always has the
  display window's size (`ImageInfo.width/height`). Overscan (data window pixels outside
  the display window) is cropped away; display-window pixels the data window does not cover
  (a cropped/bounding-box render) are filled with 0. The data window itself is reported in
  `ImageInfo.data_window` and written back onto mattes.
- **Raw values.** No colour conversion and no clamping: NaN, Inf and negatives come through
  as stored (the colour stage sanitises them). Integer files are normalised the way OIIO
  does (code / max code, e.g. 10-bit DPX code 1023 -> 1.0); PNG/TIFF colour is read
  unassociated (not multiplied by the file's alpha).
- **Channels by name.** OIIO may reorder channels, so the layer's R, G, B are looked up by
  name: `layer=""` means plain `R,G,B` (a one-channel `Y` image is repeated to grey RGB),
  `layer="beauty"` means `beauty.R,beauty.G,beauty.B` (or plain R,G,B inside a part called
  `beauty`). `part` picks an EXR part by name or index; empty = the first part that has the
  layer.
- **Bad input** raises InputError naming the file and frame, never a traceback: missing,
  zero-byte, truncated or corrupt files, a file whose content does not match its extension
  (a PNG renamed `.exr`; `formats.FORMATS` says what each extension holds), unknown
  part/layer (the available ones are listed) and a display window size that changes inside a
  sequence (`plates.PlateSequence`).

Speed: when a crop, pad or channel shuffle needs a copy anyway, pixels are decoded in the
file's own type (half stays half) and converted to float32 by numpy in that same copy (split
over OIIO's thread count); a plate needing no copy is read the cheapest measured way for its
compression (see `_read_type`). `tests/benchmarks/io_bench.py` checks the result against raw
OpenImageIO.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import OpenImageIO as oiio

from ..errors import InputError, library_text
from .display_window import to_display_window
from .exr_yca import SUBSAMPLED_ERROR, open_yca
from .formats import plate_format
from .plate_types import ImageInfo

_BITS = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "half": 16, "float": 32,
         "uint": 32, "int": 32, "double": 64}
_INT_SCALE = {"uint8": 1.0 / 255.0, "uint16": 1.0 / 65535.0}
# EXR compressions whose decoder emits float as cheaply as half (see _read_type).
_FLOAT_DIRECT = frozenset({"piz", "dwaa", "dwab", "b44", "b44a", "pxr24", "htj2k", "htj2k256",
                           "htj2k32"})
_MAX_ARRAY_METADATA = 64  # longer arrays (ICC profiles, thumbnails) are not frame metadata
_RGB = ("R", "G", "B")


class ImageReader:
    """One open image file: validation, part/layer choice and pixel decoding.

    Use as a context manager: `with ImageReader(path, frame) as reader: ...`; every problem
    is an InputError naming `path` and `frame`.
    """

    def __init__(self, path: str, frame: int | None) -> None:
        self.path = path
        self.frame = frame
        self.input = _open_input(path, frame)
        try:
            self.specs = self._part_specs()
        except BaseException:
            self.input.close()
            raise

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.input.close()

    def _error(self, message: str, hint: str | None = None) -> InputError:
        """An InputError about this file and frame."""
        return InputError(message, path=self.path, frame=self.frame, hint=hint)

    def _part_specs(self) -> list[oiio.ImageSpec]:
        """Spec of every part (subimage) of the file."""
        specs = [self.input.spec()]
        count = specs[0].get_int_attribute("oiio:subimages", 1)
        for index in range(1, count):
            if not self.input.seek_subimage(index, 0):
                raise self._error(f"cannot read part {index}: {_input_error(self.input)}")
            specs.append(self.input.spec())
        return specs

    def part_names(self) -> tuple[str, ...]:
        """Part names (the index as text for an unnamed part)."""
        return tuple(s.get_string_attribute("name") or str(i) for i, s in enumerate(self.specs))

    def info(self, layer: str, part: str) -> ImageInfo:
        """ImageInfo of the part/layer a user asked for (InputError listing the choices)."""
        if all(spec.deep for spec in self.specs):
            raise self._deep_error()
        index, names = self._choose(layer, part)
        return self._make_info(index, names)

    def _deep_error(self) -> InputError:
        """Deep pixels (several samples per pixel) have no single colour to give the model."""
        return self._error("deep images are refused (vrmbg reads flat pixels only)",
                           hint="flatten the EXR first, e.g. with a DeepToImage node")

    def info_for_channels(self, index: int, channels: Sequence[str]) -> ImageInfo:
        """ImageInfo selecting exactly `channels` of part `index`."""
        present = self.specs[index].channelnames
        missing = [c for c in channels if c not in present]
        if missing:
            raise self._error(f"no channel {', '.join(missing)} (channels: {', '.join(present)})")
        return self._make_info(index, tuple(channels))

    def _choose(self, layer: str, part: str) -> tuple[int, tuple[str, ...]]:
        """Part index and the three channel names holding the layer's R, G, B."""
        names = self.part_names()
        candidates = range(len(self.specs)) if not part else [self._part_index(part, names)]
        for index in candidates:
            found = _layer_channels(self.specs[index].channelnames, layer,
                                    self._own_names(index, names[index]))
            if found:
                return index, found
        where = f" in part {names[candidates[0]]!r}" if part else ""
        wanted = f"layer {layer!r}" if layer else "plain R,G,B channels"
        raise self._error(f"no {wanted}{where}; {self._available(candidates)}",
                          hint="choose one with --layer / --part")

    def _own_names(self, index: int, part_name: str) -> tuple[str, str]:
        """Names that mean a part's unprefixed channels: the part's name, and its view (the
        part's `view`, or in a multi-view part the default view: the first listed)."""
        spec = self.specs[index]
        view = spec.get_string_attribute("view")
        if not view:
            views = self.views(index)
            view = views[0] if views else ""
        return part_name, view

    def views(self, index: int = 0) -> tuple[str, ...]:
        """The views of a multi-view EXR part (`multiView`), default view first."""
        value = self.specs[index].getattribute("multiView")
        if isinstance(value, str):
            return tuple(v for v in value.split(",") if v)
        return tuple(str(v) for v in value) if isinstance(value, (tuple, list)) else ()

    def _part_index(self, part: str, names: tuple[str, ...]) -> int:
        """Index of a part given by name, view or number."""
        if part in names:
            return names.index(part)
        views = [s.get_string_attribute("view") for s in self.specs]
        if part in views:
            return views.index(part)
        if part.lstrip("-").isdigit() and 0 <= int(part) < len(names):
            return int(part)
        raise self._error(f"no part {part!r} (parts: {', '.join(names)})")

    def _available(self, indices: Sequence[int]) -> str:
        """One-line summary of the layers and plain channels in some parts."""
        names = self.part_names()
        texts = []
        for index in indices:
            layers, plain = split_layers(self.specs[index].channelnames)
            label = f"part {names[index]!r}: " if len(self.specs) > 1 else ""
            texts.append(f"{label}layers: {', '.join(layers) or 'none'}; "
                         f"plain channels: {', '.join(plain) or 'none'}")
        return " | ".join(texts)

    def _make_info(self, index: int, selected: tuple[str, ...]) -> ImageInfo:
        """ImageInfo of part `index` reading the channels `selected`."""
        spec = self.specs[index]
        if spec.deep:
            raise self._deep_error()
        metadata, types = _metadata(spec)
        pixel_type = str(spec.channelformat(spec.channelindex(selected[0])))
        bits = spec.get_int_attribute("oiio:BitsPerSample", 0) or _BITS.get(pixel_type, 0)
        return ImageInfo(
            path=self.path, file_format=self.input.format_name(),
            width=spec.full_width, height=spec.full_height,
            display_window=(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
            data_window=(spec.x, spec.y, spec.width, spec.height),
            channels=tuple(spec.channelnames), parts=self.part_names(),
            pixel_type=pixel_type, bit_depth=bits, metadata=metadata,
            attribute_types=types, part_index=index, selected_channels=selected)

    def pixels(self, info: ImageInfo, *, keep_half: bool = False,
               threads: int = 0) -> np.ndarray:
        """Decode the selected channels of the display window as (H, W, C) float32.

        `keep_half`: when the channels are decoded as half, return them as float16 instead
        (no widening copy, for callers that widen block by block themselves). `threads`
        caps the threads of the conversion (0 = OpenImageIO's thread count).
        """
        spec = self.specs[info.part_index]
        indices = [spec.channelindex(c) for c in info.selected_channels]
        first, last = min(indices), max(indices) + 1
        read_type = _read_type(spec, indices, info.data_window == info.display_window
                               and indices == list(range(first, last)))
        raw = self.input.read_image(info.part_index, 0, first, last, read_type)
        if raw is None:
            raise self._error(f"cannot decode pixels: {_input_error(self.input)}",
                              hint="the file is truncated or corrupt")
        raw = raw.reshape(spec.height, spec.width, last - first)
        local = [i - first for i in indices]
        dtype = np.float16 if keep_half and raw.dtype == np.float16 else np.float32
        return to_display_window(raw, local, info.data_window, info.display_window,
                           _INT_SCALE.get(str(read_type)), dtype, threads)


def _open_input(path: str, frame: int | None) -> oiio.ImageInput:
    """Open a plate file, turning every way it can be unusable into an InputError."""
    def error(message: str, hint: str | None = None) -> InputError:
        return InputError(message, path=path, frame=frame, hint=hint)

    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise error("missing frame (file not found)") from None
    except OSError as exc:
        raise error(f"cannot read ({exc.strerror})") from None
    if size == 0:
        raise error("empty file (0 bytes)", hint="an interrupted copy or render?")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    image = oiio.ImageInput.open(path, config)
    if image is None:
        reason = _global_error() or "unknown format"
        if SUBSAMPLED_ERROR.lower() in reason.lower():  # luminance/chroma: OpenEXR reads it
            image, reason = open_yca(path)
            if image is not None:
                return image
        raise error(f"cannot open: {reason}",
                    hint="the file is truncated, corrupt or not an image")
    expected = plate_format(path).decoded_as
    actual = image.format_name()
    if expected and actual != expected:
        image.close()
        extension = os.path.splitext(path)[1]
        raise error(f"the file holds {actual.upper()} data, not what its extension "
                    f"{extension} says", hint="a renamed file? convert it instead")
    return image


def _read_type(spec: oiio.ImageSpec, indices: Sequence[int], whole: bool) -> oiio.TypeDesc:
    """Decode type of the channels `indices`; `whole`: the read is the plate as is.

    Measured on 2K/4K RGBA half EXRs: for ZIP/RLE/uncompressed files decoding half and
    converting in numpy beats OIIO's float output; for PIZ/DWA/B44 OIIO's float output is
    as fast as decoding alone, so a plate needing no crop or channel shuffle is read
    straight as float (no copy at all). 8/16-bit integers are decoded as is and scaled in
    numpy (the same values OIIO's float conversion gives, about twice as fast for DPX).
    """
    types = {str(spec.channelformat(i)) for i in indices}
    only = types.pop() if len(types) == 1 else "float"
    if only == "half":
        method = spec.get_string_attribute("compression").split(":")[0].lower()
        return oiio.FLOAT if whole and method in _FLOAT_DIRECT else oiio.HALF
    if only in _INT_SCALE:
        return oiio.TypeDesc(only)
    return oiio.FLOAT


def _layer_channels(present: Sequence[str], layer: str,
                    own: tuple[str, str]) -> tuple[str, ...] | None:
    """The channel names holding R, G, B of `layer` in one part, or None.

    A layer is a channel prefix (`beauty.R`; a luminance-only `beauty.Y` is grey RGB).
    `own` = (part name, view): a layer named like the part, or like the part's view (the
    default view of a multi-view file, whose channels carry no view prefix), means the
    part's unprefixed channels; `diffuse.left` in the default view `left` is `diffuse.R`.
    """
    part_name, view = own
    prefixes = []
    if layer:
        prefixes.append(layer + ".")
        if layer in own:
            prefixes.append("")
        if view and layer.endswith("." + view):
            prefixes.append(layer[:-len(view)])
    else:
        prefixes.append("")
        if part_name:
            prefixes.append(part_name + ".")
    for prefix in prefixes:
        for names in (tuple(prefix + c for c in _RGB), (prefix + "Y",) * 3):
            if all(n in present for n in names):
                return names
    return None


def split_layers(channels: Sequence[str]) -> tuple[list[str], list[str]]:
    """Layer prefixes (`beauty` of `beauty.R`) and plain channel names, in file order."""
    layers: list[str] = []
    plain: list[str] = []
    for name in channels:
        if "." in name:
            prefix = name.rsplit(".", 1)[0]
            if prefix not in layers:
                layers.append(prefix)
        else:
            plain.append(name)
    return layers, plain


def _metadata(spec: oiio.ImageSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """Extra attributes of a part as plain Python values, and their OIIO type names."""
    values: dict[str, Any] = {}
    types: dict[str, str] = {}
    for param in spec.extra_attribs:
        try:
            name, value = param.name, param.value
        except UnicodeDecodeError:  # a damaged header: not metadata anyone can use
            continue
        if value is None or isinstance(value, (bytes, bytearray)) or not _clean_text(name):
            continue
        if isinstance(value, str) and not _clean_text(value):
            continue
        if isinstance(value, (tuple, list)):
            if len(value) > _MAX_ARRAY_METADATA:
                continue
            value = tuple(value)
        values[name] = value
        types[name] = str(param.type)
    return values, types


def _clean_text(text: str) -> bool:
    """True when `text` is valid Unicode (damaged headers yield undecodable names)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _input_error(image: oiio.ImageInput) -> str:
    """The pending error of an ImageInput (and OIIO's global one), as one line."""
    return library_text(image.geterror) or _global_error() or "unknown error"


def _global_error() -> str:
    """OIIO's pending global error as one line (clears it)."""
    return library_text(oiio.geterror)
