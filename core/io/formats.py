"""Every plate file kind vrmbg knows, in one table: its reader, what its file must hold, and
what its pixels usually are.

Like OpenTimelineIO's adapter manifest, a file kind is one entry of `FORMATS`, keyed by
extension, and everything that depends on the kind reads that entry:

- `plates.open_plates`, the one dispatch from a path to its reader, picks the reader
  (`IMAGE`: an image sequence decoded by OpenImageIO; `MOVIE`: a movie decoded by PyAV);
- the image reader refuses a file whose contents are not what its extension says
  (`decoded_as`, the name OpenImageIO reports);
- the colour stage takes a plate's default input colour space from `encoding`.

So a new plate format is one entry here, never a second list elsewhere. An extension not in
the table is an image read by OpenImageIO (whatever it finds), with no default colour space.

The table is a leaf (standard library and the plugin layer's wire facts only): the readers and the colour stage import it, and
the dispatch imports the readers, so it cannot live beside the dispatch without a circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...plugin.formats import MOVIE_EXTENSIONS as WIRE_MOVIE_EXTENSIONS

IMAGE = "image"  # an image sequence (or single file), `plates.PlateSequence`
MOVIE = "movie"  # a movie file, `movie.MovieSequence`

SCENE_LINEAR = "scene_linear"  # defaults to the config's scene_linear role
DISPLAY = "display"  # 8/16-bit integer pixels default to the color_picking role (sRGB-encoded)


@dataclass(frozen=True)
class PlateFormat:
    """What one file extension is."""

    reader: str  # IMAGE or MOVIE
    decoded_as: str = ""  # OpenImageIO's format name the file must hold ("" = not checked)
    # What its pixels usually hold, which decides the default input colour space: SCENE_LINEAR,
    # DISPLAY (integer pixels only: float TIFFs must be named), or "" = the user must name it
    # (log DPX, video).
    encoding: str = ""


FORMATS: dict[str, PlateFormat] = {
    ".exr": PlateFormat(IMAGE, "openexr", SCENE_LINEAR),
    ".sxr": PlateFormat(IMAGE, "openexr", SCENE_LINEAR),
    ".dpx": PlateFormat(IMAGE, "dpx"),
    ".tif": PlateFormat(IMAGE, "tiff", DISPLAY),
    ".tiff": PlateFormat(IMAGE, "tiff", DISPLAY),
    ".png": PlateFormat(IMAGE, "png", DISPLAY),
    ".jpg": PlateFormat(IMAGE, "jpeg", DISPLAY),
    ".jpeg": PlateFormat(IMAGE, "jpeg", DISPLAY),
    ".jpe": PlateFormat(IMAGE, "jpeg"),
    # Movies: the list hosts use too (a file Blender sends as a movie is one PyAV reads).
    **{ext: PlateFormat(MOVIE) for ext in sorted(WIRE_MOVIE_EXTENSIONS)},
}
UNLISTED = PlateFormat(IMAGE)  # any other extension: OpenImageIO decides, no default colour

MOVIE_EXTENSIONS = frozenset(ext for ext, kind in FORMATS.items() if kind.reader == MOVIE)


def plate_format(path: str) -> PlateFormat:
    """The table's entry for `path`'s extension (any case), `UNLISTED` when it has none."""
    return FORMATS.get(os.path.splitext(os.fspath(path))[1].lower(), UNLISTED)


def is_movie(path: str) -> bool:
    """True when `path` names a movie file (by extension) rather than an image sequence."""
    return plate_format(path).reader == MOVIE
