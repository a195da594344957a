"""Plate frames and scene frames: how an Image node is timed so scene frame N shows frame N.

Blender's Image node shows, at scene frame F, file frame
`clamp(F - frame_start + 1, 1, frame_duration) + frame_offset` of a sequence (and movie frame
`clamp(F - frame_start + 1, 1, frame_duration)` counted from 1 of a movie). A matte is made for
the plate frame the node shows, so the add-on sets both Image nodes so that scene frame N shows
plate frame N, and asks the engine for the same clamped frame (the host session's `clamp`,
`plugin.frame_ranges.nearest_frame`). Standard library only.
"""

from __future__ import annotations

from typing import NamedTuple


class NodeTiming(NamedTuple):
    """The Image node's frame_start, frame_duration and frame_offset."""

    frame_start: int
    frame_duration: int
    frame_offset: int


def sequence_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a file sequence numbered first..last (scene N -> file N)."""
    return NodeTiming(first, last - first + 1, first - 1)


def movie_timing(first: int, last: int) -> NodeTiming:
    """Image node timing for a movie whose frame 1 is engine frame `first` (scene N -> frame N)."""
    return NodeTiming(first, last - first + 1, 0)
