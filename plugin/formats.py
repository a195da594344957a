"""Which plate files are movies, by extension: the fact the engine and the hosts share.

One list for the engine (`core/io/formats.py` makes each a MOVIE entry of its table of plate
kinds) and the hosts (Blender loads such a plate as a movie, and sends it as one), so a file a
host treats as a movie is one the engine reads as a movie. PyAV reads every container listed.
Standard library only.
"""

from __future__ import annotations

import os

MOVIE_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".webm"})


def is_movie(path: str) -> bool:
    """True when `path` names a movie file (by extension) rather than an image sequence."""
    return os.path.splitext(os.fspath(path))[1].lower() in MOVIE_EXTENSIONS
