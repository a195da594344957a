"""What `vrmbg info` reports about a plate: frames, gaps, windows, parts, channels, colour.

Kept apart from the readers: the report reads one header and lists what a file holds,
while `image_reader`, `plates` and `movie` read pixels for the engine.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import OpenImageIO as oiio

from .formats import is_movie
from .frames import find_gaps, format_frame_ranges
from .image_reader import ImageReader, split_layers
from .plate_checks import primaries_name, window_warning
from .plate_types import ImageInfo, metadata_fps, timecode_text
from .plates import PlateSequence, open_plates

_COLOUR_KEYS = ("oiio:ColorSpace", "colorInteropID", "dpx:Transfer", "dpx:Colorimetric",
                "chromaticities", "oiio:Gamma", "ICCProfile:profile_description")


def describe(pattern: str, *, layer: str = "", part: str = "") -> dict:
    """What `vrmbg info` shows: frames, gaps, windows, parts/channels, colour, timecode.

    JSON-able. The header comes from the first frame; the layer/part choice is validated
    (InputError listing what the file holds). Movie files (.mov, .mp4...) are described
    through `vrmbg.core.io.movie`.
    """
    if is_movie(pattern):
        movie = open_plates(pattern, layer=layer, part=part)
        try:
            info = movie.info(movie.first_frame)
        finally:
            movie.close()
        return _facts(pattern, False, movie.frames, info, parts=[], layer="", views=())
    sequence = PlateSequence(pattern, layer=layer, part=part)
    with ImageReader(sequence.path_for(sequence.first_frame), sequence.first_frame) as reader:
        info = reader.info(sequence.layer, sequence.part)
        parts = [_part_summary(i, name, spec)
                 for i, (name, spec) in enumerate(zip(reader.part_names(), reader.specs))]
        views = reader.views(info.part_index) or tuple(
            v for v in (s.get_string_attribute("view") for s in reader.specs) if v)
    return _facts(pattern, sequence.pattern.is_sequence, sequence.frames, info, parts,
                  sequence.layer, views)


def _facts(pattern: str, is_sequence: bool, frames: list[int], info: ImageInfo,
           parts: list[dict], layer: str, views: Sequence[str]) -> dict:
    """The JSON-able description of a sequence from its frames and first-frame header."""
    gaps = find_gaps(frames) if is_sequence else []
    meta = info.metadata
    timecode = meta.get("smpte:TimeCode")
    return {
        "pattern": pattern,
        "is_sequence": is_sequence,
        "frames": format_frame_ranges(frames),
        "frame_count": len(frames),
        "first_frame": frames[0],
        "last_frame": frames[-1],
        "gaps": [list(g) for g in gaps],
        "missing_count": sum(b - a + 1 for a, b in gaps),
        "file": info.path,
        "format": info.file_format,
        "resolution": [info.width, info.height],
        "display_window": list(info.display_window),
        "data_window": list(info.data_window),
        "pixel_type": info.pixel_type,
        "bit_depth": info.bit_depth,
        "part": info.parts[info.part_index] if info.parts else "",
        "layer": layer,
        "channels": list(info.channels),
        "selected_channels": list(info.selected_channels or info.channels[:3]),
        "parts": parts,
        "colour": _colour_facts(meta),
        "warnings": [w for w in [window_warning(info.data_window, info.display_window)] if w],
        "views": list(views),
        "luminance_chroma": meta.get("openexr:luminanceChroma", ""),
        "timecode": timecode_text(timecode) if isinstance(timecode, tuple) else None,
        "fps": metadata_fps(meta),
        "metadata": {k: _jsonable(v) for k, v in sorted(meta.items())},
    }


def _colour_facts(meta: dict[str, Any]) -> dict[str, Any]:
    """The colour metadata of a frame, with the name of its primaries when recognised."""
    facts = {k: _jsonable(meta[k]) for k in _COLOUR_KEYS if k in meta}
    primaries = primaries_name(meta.get("chromaticities"))
    if primaries:
        facts["primaries"] = primaries
    return facts


def _part_summary(index: int, name: str, spec: oiio.ImageSpec) -> dict:
    """JSON summary of one part: name, channels, layers, windows and pixel type."""
    layers, plain = split_layers(spec.channelnames)
    return {
        "index": index,
        "name": name,
        "channels": list(spec.channelnames),
        "layers": layers,
        "plain_channels": plain,
        "data_window": [spec.x, spec.y, spec.width, spec.height],
        "display_window": [spec.full_x, spec.full_y, spec.full_width, spec.full_height],
        "pixel_type": str(spec.format),
        "tiled": spec.tile_width > 0,
        "compression": spec.get_string_attribute("compression"),
    }


def _jsonable(value: Any) -> Any:
    """Metadata value as JSON (tuples become lists, non-finite floats become text)."""
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
