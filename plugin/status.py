"""What a host says about a matte: the facts (cached, device, speed, work, errors) and the
text made from them, as a panel's lines (Nuke's Status knob) or one line (Blender's label).

One wording for both hosts: progress reads `computing: frame 1005 (5 of 24), about 22 s
left` everywhere. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from .protocol import STAGE_COMPUTING

NOT_ANALYSED = "not analysed yet"
NOTES_KEPT = 2  # e.g. an engine restart and the outcome of the analysis it interrupted


@dataclass
class Status:
    """Facts the status shows (filled from the engine's events and answers)."""

    cached: int = 0
    total: int = 0
    device: str = ""
    precision: str = ""
    seconds_per_frame: float = 0.0
    working: str = ""  # e.g. "computing: frame 1005 (5 of 24)"
    last_error: str = ""
    notes: Tuple[str, ...] = ()  # what happened last, newest last: see `noted`
    done: int = 0  # progress of the computation running (or last run)
    todo: int = 0


def noted(status: Status, note: str) -> None:
    """Add a note (e.g. "cache cleared"); the oldest goes when more than NOTES_KEPT."""
    status.notes = (tuple(n for n in status.notes if n != note) + (note,))[-NOTES_KEPT:]


def progress_text(event: Mapping[str, Any]) -> str:
    """A `progress` event as text: the stage, the frame with its count, the time left."""
    done, total = int(event.get("done") or 0), int(event.get("total") or 0)
    stage = str(event.get("stage") or STAGE_COMPUTING)
    frame = event.get("frame")
    text = stage if frame is None else f"{stage}: frame {frame} ({done} of {total})"
    eta = event.get("eta_seconds")
    if eta:
        text += f", about {float(eta):.0f} s left"
    return text


def _head(status: Status) -> str:
    if status.total:
        return f"{status.cached} of {status.total} frames cached"
    return NOT_ANALYSED


def status_text(status: Status, frame: Optional[int] = None, frame_shown: bool = False) -> str:
    """Lines for a panel: what is cached, where it runs, how fast; the work in flight; the
    current `frame` when its matte is not shown; the last note and error."""
    parts = [_head(status)]
    if status.device:
        parts.append(f"{status.device} {status.precision}".strip())
    if status.seconds_per_frame > 0:
        parts.append(f"{status.seconds_per_frame:.2f} s/frame")
    lines = [" | ".join(parts)]
    if status.working:
        lines.append(status.working)
    if frame is not None and not frame_shown:
        lines.append(f"frame {frame}: not computed yet (shows black)")
    lines.extend(status.notes)
    if status.last_error:
        lines.append(f"last error: {status.last_error}")
    return "\n".join(lines)


def status_line(status: Status) -> str:
    """One line: the work in flight, else the last error, else the newest note, else what is
    cached."""
    if status.working:
        text = status.working
    elif status.last_error:
        return "Error: " + status.last_error
    else:
        text = status.notes[-1] if status.notes else _head(status)
    return text[:1].upper() + text[1:]
