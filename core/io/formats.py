"""Which reader opens a plate path: an image sequence (EXR, DPX, TIFF, PNG...) or a movie.

`open_plates` is the one dispatcher every caller uses; the plate type also decides the
default input colour space (`colour.default_input_space`), so the file kinds live here,
apart from both readers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .movie import MovieSequence
    from .plates import PlateSequence

MOVIE_EXTENSIONS = frozenset({".mov", ".mp4", ".mxf", ".mkv", ".avi"})
DEFAULT_MOVIE_START = 1001  # frame number of a movie's first frame unless told otherwise


def is_movie(path: str) -> bool:
    """True when `path` names a movie file (by extension) rather than an image sequence."""
    return os.path.splitext(os.fspath(path))[1].lower() in MOVIE_EXTENSIONS


def open_plates(path: str, *, layer: str = "", part: str = "",
                movie_start: int = DEFAULT_MOVIE_START) -> "PlateSequence | MovieSequence":
    """Open plates: a MovieSequence for a movie file, else an image PlateSequence.

    Movies have no layers or parts; asking for one is a UsageError.
    """
    if is_movie(path):
        if layer or part:
            raise UsageError("movies have no layers or parts; drop --layer/--part", path=path)
        from .movie import MovieSequence

        return MovieSequence(path, start=movie_start)
    from .plates import PlateSequence

    return PlateSequence(path, layer=layer, part=part)
