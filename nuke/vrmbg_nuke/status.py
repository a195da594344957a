"""The node's status line: what is cached, where it runs, how fast, and what went wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class Status:
    """Facts the status line shows (filled from the engine's events and answers)."""

    cached: int = 0
    total: int = 0
    device: str = ""
    precision: str = ""
    seconds_per_frame: float = 0.0
    working: str = ""  # e.g. "computing 1005 (5/24)"
    frame: Optional[int] = None  # the current frame
    frame_shown: bool = False  # its matte is valid and shown
    last_error: str = ""
    note: str = ""  # e.g. "engine restarted after it stopped (exit code -9)"


def status_text(status: Status) -> str:
    """Lines for the node's Status knob."""
    if status.total:
        head = f"{status.cached} of {status.total} frames cached"
    else:
        head = "not analysed yet"
    parts = [head]
    if status.device:
        parts.append(f"{status.device} {status.precision}".strip())
    if status.seconds_per_frame > 0:
        parts.append(f"{status.seconds_per_frame:.2f} s/frame")
    lines = [" | ".join(parts)]
    if status.working:
        lines.append(status.working)
    if status.frame is not None and not status.frame_shown:
        lines.append(f"frame {status.frame}: not computed yet (shows black)")
    if status.note:
        lines.append(status.note)
    if status.last_error:
        lines.append(f"last error: {status.last_error}")
    return "\n".join(lines)
