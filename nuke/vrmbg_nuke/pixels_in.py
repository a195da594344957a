"""Where the engine reads the plate from.

A Read node on a file sequence (no retime) is read directly by the engine, in the Read's colour
space. Anything else (a comp tree, a movie, a retimed Read) is rendered by the node's internal
Write to a scene-linear EXR sequence in the cache, for the frames needed, and the engine reads
that; those files are compared by content, so re-rendering an unchanged input keeps the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Set

import nuke

from . import colour, graph
from .plugin.frame_ranges import frame_runs
from .plugin.paths import default_cache_root
from .plugin.settings import Settings

_SEQUENCE_TOKEN = re.compile(r"#+|%0?\d*d|\$F\d*")


@dataclass
class Plate:
    """The engine's view of the node's input: a file pattern, its frames and settings."""

    pattern: str
    first: int
    last: int
    direct: bool  # True: the engine reads the input Read's own files
    settings: Dict[str, Any] = field(default_factory=dict)  # colour and channel settings
    source: str = ""  # the input node's name, for messages


def _is_direct(read: Any) -> bool:
    """A Read on a file sequence whose frames are the script's frames."""
    if read.Class() != "Read" or read["disable"].value():
        return False
    path = nuke.filename(read) or ""
    if not _SEQUENCE_TOKEN.search(os.path.basename(path)):
        return False
    retime = read.knob("frame")
    return not (retime is not None and str(retime.value()).strip())


def _rendered_pattern(group: Any, cache_dir: str, node_id: str) -> str:
    digest = hashlib.sha256(node_id.encode("utf-8")).hexdigest()[:12]
    folder = f"{group.name()}-{digest}"
    return os.path.join(default_cache_root(cache_dir), "nuke-input", folder, "input.####.exr")


def plate_for(group: Any, settings: Settings, node_id: str) -> Plate:
    """What the engine should read for this node now; ValueError says what is wrong."""
    source = graph.plate_source(group)
    if source is None:
        raise ValueError("connect a plate to the node's input")
    if _is_direct(source):
        return Plate(nuke.filename(source) or "", int(source["first"].value()),
                     int(source["last"].value()), True, dict(colour.read_colour(source)),
                     source.name())
    rendered: Dict[str, Any] = dict(colour.working_colour())
    rendered.update(layer="", part="", content_hash=True)
    pattern = _rendered_pattern(group, settings.cache_dir, node_id)
    return Plate(pattern, int(source.firstFrame()), int(source.lastFrame()), False, rendered,
                 source.name())


def render_input(group: Any, plate: Plate, first: int, last: int,
                 done: Optional[Set[int]] = None) -> None:
    """Render the node's input for frames first..last to the plate's EXR sequence.

    `done` (frames already rendered since the input last changed) are skipped and the
    rendered ones added. Runs on the main thread (nuke.execute).
    """
    if plate.direct:
        return
    wanted = [f for f in range(first, last + 1) if done is None or f not in done]
    if not wanted:
        return
    write = graph.input_write(group)
    write["file"].setValue(plate.pattern)
    write["disable"].setValue(False)
    try:
        for start, end in frame_runs(wanted):
            nuke.execute(write, start, end, 1)
    finally:
        write["disable"].setValue(True)
    if done is not None:
        done.update(wanted)

