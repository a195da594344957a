"""What a host says about a matte: the facts (cached, device, speed, work, errors) and the
text made from them, as a panel's lines (Nuke's Status knob) or one line (Blender's label).

One wording for both hosts: progress reads `computing: frame 1005 (5 of 24), about 22 s
left` everywhere. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from . import schema
from .protocol import STAGE_COMPUTING
from .sizes import size_text

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
    cache_bytes: int = -1  # the shot's cache on disk, every setting (-1: not known yet)
    chain_bytes: int = -1  # the part of it for the settings asked now
    other_bytes: int = -1  # the shot's chains of other settings (-1: there is none)


def cache_size_text(status: Status) -> str:
    """`cache 1.2 GB` (the shot's cache; with the part for other settings, which a prune
    can free, when the shot has chains of other settings), or "" before the engine has
    said."""
    if status.cache_bytes < 0:
        return ""
    text = f"cache {size_text(status.cache_bytes)}"
    if status.other_bytes >= 0:
        text += f" ({size_text(status.other_bytes)} for other settings)"
    return text


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
    if cache_size_text(status):
        parts.append(cache_size_text(status))
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


# The command line's flags, as a host names the same settings ("--model" -> "the Model
# setting"): the engine's messages are written for the command line.
_FLAG_NAMES = {"--" + p.name.replace("_", "-"): f"the {p.label} setting" for p in schema.PARAMS}
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")
# What the engine says when hub weights cannot be fetched (core/model/hub.py), and the fix on
# a machine without the internet (a render farm), which a host shows with it.
HUB_NOT_FETCHED = ("cannot reach huggingface.co to fetch", "not in the local Hugging Face cache")
OFFLINE_FIX = ("; for machines without the internet (a render farm): fetch the weights once "
               "on a machine online (`vrmbg model info <repo id>`, the same HF_HOME) and set "
               "HF_HUB_OFFLINE=1 on the farm, or set the Model setting to a local folder")


def for_host(message: str) -> str:
    """An engine message as a host shows it: command-line flags named as the host's
    settings, and for hub weights that cannot be fetched, the fix for an offline farm."""
    text = _FLAG.sub(lambda found: _FLAG_NAMES.get(found.group(0), found.group(0)),
                     str(message))
    if any(part in text for part in HUB_NOT_FETCHED) and OFFLINE_FIX not in text:
        text += OFFLINE_FIX
    return text
