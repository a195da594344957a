"""Plate frames and scene frames: how an Image node is timed so scene frame N shows frame N.

Blender's Image node shows, at scene frame F, file frame
`clamp(F - frame_start + 1, 0, frame_duration) + frame_offset` of a sequence (movie frames
count from 1); a frame duration of 0 shows nothing, and a cyclic node wraps instead of
clamping. The add-on times both Image nodes so that scene frame N shows plate frame N, and
every frame before the first or after the last shows the nearest one, the frame the engine is
asked for (the host session's `clamp`, `plugin.frame_ranges.nearest_frame`). Standard library
only.
"""

from __future__ import annotations

from typing import NamedTuple


class NodeTiming(NamedTuple):
    """The Image node's frame_start, frame_duration, frame_offset and use_cyclic."""

    frame_start: int
    frame_duration: int
    frame_offset: int
    cyclic: bool = False


def sequence_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a file sequence numbered first..last (scene N -> file N)."""
    return _timing(first, last, first)


def movie_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a movie whose frame 1 is engine frame `first` (scene N -> frame N)."""
    return _timing(first, last, 1)


def _timing(first: int, last: int, first_file: int) -> NodeTiming:
    # Relative frame 0 (the clamp's floor) is the first frame: before the shot shows it too.
    if last == first:  # a duration of 0 shows nothing: one cyclic frame shows it everywhere
        return NodeTiming(first, 1, first_file - 1, cyclic=True)
    return NodeTiming(first + 1, last - first, first_file)
