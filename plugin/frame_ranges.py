"""Frame-range text, as the engine reads and writes it: `1001-1010,1012,1020-1030x2`.

The engine parses `--frames` and `ensure` ranges and answers `cached` and `frames` in this
form; hosts send ranges and read answers with the same two functions, so both sides always
agree on what a range means. Items are separated by commas or spaces; `a-bxN` is every Nth
frame; negative frames are written `-5--1`. Standard library only.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Sequence, Tuple

MAX_FRAMES = 1_000_000  # a range larger than this is a typo, not a shot

_ITEM = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?$")


def parse_frame_ranges(text: str, *, empty_ok: bool = False) -> List[int]:
    """Frames named by text like `1001-1100x2,1200`, sorted and without duplicates.

    ValueError names the offending item for anything malformed, reversed or empty (empty
    text is allowed, as no frames, with `empty_ok`: an engine answer with nothing cached).
    """
    spec = str(text)
    if not spec.strip():
        if empty_ok:
            return []
        raise ValueError("empty frame range (expected e.g. 1001-1100, 1001-1100x2, 1001,1005)")
    frames: set = set()
    for group in spec.strip().split(","):
        items = group.split()
        if not items:
            raise ValueError(f"frame range {spec!r} has an empty item")
        for item in items:
            frames.update(_item_frames(item, spec))
            if len(frames) > MAX_FRAMES:
                raise ValueError(f"frame range {spec!r} names more than {MAX_FRAMES} frames")
    return sorted(frames)


def _item_frames(item: str, spec: str) -> range:
    """One `a`, `a-b` or `a-bxN` item as a range (inclusive of b)."""
    match = _ITEM.match(item)
    if not match:
        raise ValueError(f"bad frame range item {item!r} in {spec!r} "
                         "(expected e.g. 1001, 1001-1100, 1001-1100x2, -5--1)")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3)) if match.group(3) is not None else 1
    if last < first:
        raise ValueError(f"frame range item {item!r} in {spec!r} ends before it starts")
    if step < 1:
        raise ValueError(f"frame range item {item!r} in {spec!r} has a step below 1")
    if (last - first) // step + 1 > MAX_FRAMES:
        raise ValueError(f"frame range {spec!r} names more than {MAX_FRAMES} frames")
    return range(first, last + 1, step)


def format_frame_ranges(frames: Iterable[int]) -> str:
    """Compact text for a set of frames, e.g. `1001-1010,1012,1020-1030x2`.

    Runs of 3+ frames with a constant step become `a-bxN`; the text parses back to the
    same frames with `parse_frame_ranges`.
    """
    ordered = sorted(set(int(f) for f in frames))
    items: List[str] = []
    index = 0
    while index < len(ordered):
        end, step = _run_from(ordered, index)
        first, last = ordered[index], ordered[end]
        if end == index:
            items.append(str(first))
        elif step == 1:
            items.append(f"{first}-{last}")
        else:
            items.append(f"{first}-{last}x{step}")
        index = end + 1
    return ",".join(items)


def _run_from(ordered: Sequence[int], index: int) -> Tuple[int, int]:
    """End index and step of the constant-step run starting at `index` (step>1 needs 3 frames)."""
    if index + 1 >= len(ordered):
        return index, 1
    step = ordered[index + 1] - ordered[index]
    end = index + 1
    while end + 1 < len(ordered) and ordered[end + 1] - ordered[end] == step:
        end += 1
    if step > 1 and end - index < 2:
        return index, 1
    return end, step


def frame_runs(frames: Iterable[int]) -> List[Tuple[int, int]]:
    """Contiguous (first, last) runs of a set of frames."""
    out: List[Tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if out and frame == out[-1][1] + 1:
            out[-1] = (out[-1][0], frame)
        else:
            out.append((frame, frame))
    return out


def nearest_frame(frame: int, first: int, last: int) -> int:
    """The frame of first..last nearest to `frame` (what a host shows beyond either end)."""
    return min(max(frame, first), last)
