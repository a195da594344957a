"""Reading plate frames (EXR, DPX, TIFF, PNG, JPEG) through OpenImageIO.

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
  (a PNG renamed `.exr`), unknown part/layer (the available ones are listed) and a display
  window size that changes inside a sequence.

Speed: when a crop, pad or channel shuffle needs a copy anyway, pixels are decoded in the
file's own type (half stays half) and converted to float32 by numpy in that same copy (split
over OIIO's thread count); a plate needing no copy is read the cheapest measured way for its
compression (see `_read_type`). `tests/benchmarks/io_bench.py` checks the result against raw
OpenImageIO.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import OpenImageIO as oiio

from ..errors import InputError, UsageError, library_text
from .exr_yca import SUBSAMPLED_ERROR, open_yca
from .frames import SequencePattern
from .halfs import copy_into

Window = tuple[int, int, int, int]  # x, y, width, height

# What OIIO must report for a file with this extension; anything else is refused.
EXTENSION_FORMATS = {
    ".exr": "openexr", ".sxr": "openexr", ".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff",
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg",
}
_BITS = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "half": 16, "float": 32,
         "uint": 32, "int": 32, "double": 64}
_INT_SCALE = {"uint8": 1.0 / 255.0, "uint16": 1.0 / 65535.0}
# EXR compressions whose decoder emits float as cheaply as half (see _read_type).
_FLOAT_DIRECT = frozenset({"piz", "dwaa", "dwab", "b44", "b44a", "pxr24", "htj2k", "htj2k256",
                           "htj2k32"})
_MAX_ARRAY_METADATA = 64  # longer arrays (ICC profiles, thumbnails) are not frame metadata
_RGB = ("R", "G", "B")


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


class PlateSequence:
    """An image sequence (or single file) read frame by frame with one part/layer choice."""

    reads_in_order = False  # any frame can be read at any time, by several threads

    def __init__(self, pattern: str, *, layer: str = "", part: str = "",
                 frames: Sequence[int] | None = None) -> None:
        self.pattern = SequencePattern.parse(pattern)
        self.layer = layer.strip().rstrip(".")
        self.part = str(part).strip()
        found = self.pattern.discover() if frames is None else sorted(set(frames))
        if frames is not None and not found:
            raise UsageError("no frames requested (empty frame list)", path=pattern)
        if not found:
            raise InputError("no frames found on disk", path=pattern,
                             hint="check the path and the frame token: ####, %04d, @, $F4")
        self.frames: list[int] = list(found)
        self.first_frame: int = self.frames[0]
        self._size: tuple[int, int, int] | None = None  # width, height, from frame

    def path_for(self, frame: int) -> str:
        """The file of `frame`."""
        return self.pattern.path_for(frame)

    def info(self, frame: int) -> ImageInfo:
        """Header of `frame` for the chosen part/layer (InputError if unusable)."""
        path = self.path_for(frame)
        with ImageReader(path, frame) as reader:
            info = reader.info(self.layer, self.part)
        self._check_size(info, frame)
        return info

    def read(self, frame: int, *, keep_half: bool = False, threads: int = 0) -> Plate:
        """Decode `frame`'s display-window RGB; InputError(path, frame) on any bad frame.

        `keep_half`: a half plate may come back as float16, for callers (the colour
        conversion) that widen it block by block anyway. `threads` caps the threads that
        convert the pixels (0 = OpenImageIO's count; 1 = the calling thread only, for callers
        that read several frames at once).
        """
        path = self.path_for(frame)
        with ImageReader(path, frame) as reader:
            info = reader.info(self.layer, self.part)
            self._check_size(info, frame)
            rgb = reader.pixels(info, keep_half=keep_half, threads=threads)
        return Plate(frame=frame, path=path, rgb=rgb, info=info)

    def fingerprint(self, frame: int, content: bool = False) -> str:
        """Identity of a frame's file: size + mtime (cheap) or a hash of its bytes."""
        path = self.path_for(frame)
        return file_fingerprint(path, content=content, frame=frame)

    def _check_size(self, info: ImageInfo, frame: int) -> None:
        """Refuse a frame whose display window size differs from the sequence's."""
        if self._size is None:
            self._size = self._reference_size(info, frame)
        width, height, reference = self._size
        if (info.width, info.height) != (width, height):
            raise InputError(
                f"resolution changes inside the sequence: {info.width}x{info.height}, "
                f"but frame {reference} is {width}x{height}", path=info.path, frame=frame)

    def _reference_size(self, info: ImageInfo, frame: int) -> tuple[int, int, int]:
        """Display size of the first frame (of this one if the first cannot be read)."""
        if frame != self.first_frame:
            try:
                with ImageReader(self.path_for(self.first_frame), self.first_frame) as reader:
                    first = reader.info(self.layer, self.part)
                return first.width, first.height, self.first_frame
            except InputError:
                pass
        return info.width, info.height, frame


def file_fingerprint(path: str, *, content: bool = False, frame: int | None = None) -> str:
    """`size:mtime_ns` of a file, or `sha256:<hex>` of its bytes when `content` is set."""
    try:
        if not content:
            stat = os.stat(path)
            return f"{stat.st_size}:{stat.st_mtime_ns}"
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    except FileNotFoundError:
        raise InputError("missing frame (file not found)", path=path, frame=frame) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=path, frame=frame) from None


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
        return _to_display(raw, local, info.data_window, info.display_window,
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
    expected = EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower())
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


def _to_display(raw: np.ndarray, local: Sequence[int], data: Window, display: Window,
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
