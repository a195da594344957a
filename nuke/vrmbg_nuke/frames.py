"""Frame sets: the engine's range text ("1001-1010,1012") and the viewer gate built from it.

The gate is a Nuke expression that is 0 on frames whose matte is valid and 1 elsewhere; the
node's Switch shows black where it is 1, so a frame not computed yet (or made stale by a
changed plate or setting) is never shown.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Set, Tuple

_PART = re.compile(r"^\s*(-?\d+)(?:\s*-\s*(-?\d+))?(?:\s*x\s*(\d+))?\s*$")


def parse_frames(text: str) -> List[int]:
    """Frames of range text like '1001-1010,1012' or '1001-1020x2' (empty text: none)."""
    frames: Set[int] = set()
    for part in (text or "").replace(" ", ",").split(","):
        if not part.strip():
            continue
        match = _PART.match(part)
        if not match:
            raise ValueError(f"not a frame range: {part!r} (use e.g. 1001-1100)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3) or 1)
        if last < first or step < 1:
            raise ValueError(f"not a frame range: {part!r} (first-last, first <= last)")
        frames.update(range(first, last + 1, step))
    return sorted(frames)


def runs(frames: Iterable[int]) -> List[Tuple[int, int]]:
    """Contiguous (first, last) runs of a set of frames."""
    out: List[Tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if out and frame == out[-1][1] + 1:
            out[-1] = (out[-1][0], frame)
        else:
            out.append((frame, frame))
    return out


def range_text(frames: Iterable[int]) -> str:
    """'1001-1010,1012' for a set of frames."""
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs(frames))


def gate_expression(valid: Iterable[int]) -> str:
    """A Nuke expression: 0 where a frame's matte is valid, 1 (black) elsewhere."""
    terms = [f"frame=={a}" if a == b else f"(frame>={a} && frame<={b})" for a, b in runs(valid)]
    if not terms:
        return "1"
    return "!(" + " || ".join(terms) + ")"
