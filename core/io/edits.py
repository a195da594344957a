"""Cut lists: frames where a new shot starts, from the command line or an edit's timeline.

`--cuts 1050,1101` names them; `--cuts edit.otio` or `--cuts edit.edl` reads the clip
boundaries of an OpenTimelineIO timeline (a CMX 3600 EDL through its adapter). A timeline's
first frame is the plates' first frame: the plates are the edit rendered out (a cut
sequence or a movie), so a clip starting 49 frames into the edit is a cut at first + 49.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..errors import InputError, UsageError, first_line
from .frames import format_frame_ranges, parse_frame_spec

TIMELINE_EXTENSIONS = (".otio", ".edl", ".otioz", ".otiod")


def is_timeline(spec: str) -> bool:
    """True when the cut list names a timeline file rather than frame numbers."""
    return os.path.splitext(spec.strip())[1].lower() in TIMELINE_EXTENSIONS


def resolve_cuts(spec: str, frames: Sequence[int]) -> list[int]:
    """The cuts inside the shot, sorted: frames after its first frame where a new shot starts.

    UsageError for a list that cannot be read or names a frame outside the plates.
    """
    spec = (spec or "").strip()
    if not spec:
        return []
    first = frames[0]
    if is_timeline(spec):
        cuts = [first + offset for offset in timeline_cut_offsets(spec)]
    else:
        try:
            cuts = parse_frame_spec(spec)
        except UsageError as exc:
            raise UsageError(f"--cuts: {exc.message}") from None
    present = set(frames)
    outside = sorted(c for c in cuts if c not in present)
    if outside:
        raise UsageError(f"--cuts names frames that are not plate frames: "
                         f"{format_frame_ranges(outside)} (plates {first}-{frames[-1]})")
    return sorted({c for c in cuts if c != first})


def timeline_cut_offsets(path: str) -> list[int]:
    """Frame offsets from the timeline's start where a clip starts (every video track)."""
    try:
        import opentimelineio as otio
    except ImportError:  # pragma: no cover - a dependency
        raise UsageError("reading timelines needs the 'opentimelineio' package",
                         path=path) from None
    if not os.path.isfile(path):
        raise InputError("the timeline file does not exist", path=path)
    try:
        timeline = otio.adapters.read_from_file(path)
    except Exception as exc:  # adapters raise their own error types
        raise InputError(f"cannot read the timeline ({first_line(exc)})", path=path) from None
    tracks = getattr(timeline, "video_tracks", lambda: [])()
    if not tracks:
        raise InputError("the timeline has no video track", path=path)
    offsets: set[int] = set()
    for track in tracks:
        rate = track.duration().rate or 24.0
        position = 0
        for item in track:
            if isinstance(item, otio.schema.Transition):
                continue  # a transition overlaps its neighbours: it takes no track time
            length = int(round(item.duration().rescaled_to(rate).value))
            if isinstance(item, otio.schema.Clip) and position > 0:
                offsets.add(position)
            position += length
    return sorted(offsets)
