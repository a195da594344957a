"""Plate frames and scene frames: which file an Image node shows, and which frame to ask for.

Blender's Image node shows, at scene frame F, file frame
`clamp(F - frame_start + 1, 1, frame_duration) + frame_offset` of a sequence (and movie frame
`clamp(F - frame_start + 1, 1, frame_duration)` counted from 1 of a movie). A matte is made for
the plate frame the node shows, so the add-on sets both Image nodes so that scene frame N shows
plate frame N, and asks the engine for the same clamped frame. Standard library only.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".webm")
_FRAME_IN_NAME = re.compile(r"^(.*?)(\d+)(\.[^.\d][^.]*)$")


class NodeTiming(NamedTuple):
    """The Image node's frame_start, frame_duration and frame_offset."""

    frame_start: int
    frame_duration: int
    frame_offset: int


def is_movie(path: str) -> bool:
    """True when `path` names a movie file rather than a frame of an image sequence."""
    return os.path.splitext(path)[1].lower() in MOVIE_EXTENSIONS


def sequence_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a file sequence numbered first..last (scene N -> file N)."""
    return NodeTiming(first, last - first + 1, first - 1)


def movie_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a movie whose frame 1 is engine frame `first` (scene N -> frame N)."""
    return NodeTiming(first, last - first + 1, 0)


def plate_frame(scene_frame: int, first: int, last: int) -> int:
    """The plate frame an Image node shows at `scene_frame`: clamped to first..last."""
    return min(max(scene_frame, first), last)


def sequence_pattern(path: str) -> str:
    """The `####` pattern of the sequence that frame file `path` belongs to.

    'shot.1003.exr' -> 'shot.####.exr'; a name that is already a pattern ('####', '%04d')
    or has no frame number is returned unchanged.
    """
    folder, name = os.path.split(path)
    if "#" in name or "%" in name:
        return path
    match = _FRAME_IN_NAME.match(name)
    if not match:
        return path
    stem, digits, extension = match.groups()
    return os.path.join(folder, stem + "#" * len(digits) + extension)


def frame_file(pattern: str, frame: int) -> str:
    """The file of `frame` in a `####` pattern (padding = the number of #, sign included)."""
    folder, name = os.path.split(pattern)
    match = re.search(r"#+", name)
    if not match:
        return pattern
    width = len(match.group(0))
    number = "%0*d" % (width, frame)
    return os.path.join(folder, name[:match.start()] + number + name[match.end():])
