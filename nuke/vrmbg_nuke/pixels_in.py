"""Where the engine reads the plate from.

A Read node on a file sequence (no retime) is read directly by the engine, in the Read's colour
space. Anything else (a comp tree, a movie, a retimed Read) is rendered by the node's internal
Write to a scene-linear EXR sequence in the cache, for the frames needed, and the engine reads
that; those files are compared by content, so re-rendering an unchanged input keeps the cache.
Nuke renders one thing at a time, so that happens outside renders only (following the
playhead, Analyse); a render uses the frames already there when they were rendered from the
graph as it is now, and stops with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Set

import nuke

from . import colour, graph
from .plugin import fs
from .plugin.frame_ranges import format_frame_ranges, frame_runs, parse_frame_ranges
from .plugin.paths import NUKE_INPUT_FOLDER, cache_root_problem, host_cache_root
from .plugin.settings import Settings

_SEQUENCE_TOKEN = re.compile(r"#+|%0?\d*d|\$F\d*")
RECORD = "input.json"  # beside the rendered input: the graph it was rendered from, its frames
SLICE_FRAMES = 4  # input frames rendered per main-thread slice (the UI runs in between)


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


def script_file() -> str:
    """The saved script's path ("" for a script never saved)."""
    try:
        return nuke.scriptName()
    except RuntimeError:
        return ""


def cache_root(setting: str) -> str:
    """The node's cache folder: its own setting, $VRMBG_CACHE, beside the saved script, or
    the user cache for a script never saved; ValueError when that folder must not be one."""
    root = host_cache_root(setting, script_file())
    problem = cache_root_problem(root)
    if problem:
        raise ValueError(f"cache folder {root}: {problem}")
    return root


def input_folder(group: Any, node_id: str) -> str:
    """The node's rendered input, relative to the cache root."""
    digest = hashlib.sha256(node_id.encode("utf-8")).hexdigest()[:12]
    return os.path.join(NUKE_INPUT_FOLDER, f"{group.name()}-{digest}")


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
    pattern = os.path.join(cache_root(settings.cache_dir), input_folder(group, node_id),
                           "input.####.exr")
    return Plate(pattern, int(source.firstFrame()), int(source.lastFrame()), False, rendered,
                 source.name())


def _record_path(plate: Plate) -> str:
    return os.path.join(os.path.dirname(plate.pattern), RECORD)


def rendered_frames(plate: Plate, fingerprint: str) -> Set[int]:
    """The input frames on disk that were rendered from the graph `fingerprint` names (a
    render on the farm can use them: Nuke cannot render them inside a render)."""
    try:
        with open(_record_path(plate), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return set()
    if record.get("fingerprint") != fingerprint:
        return set()
    return set(parse_frame_ranges(str(record.get("frames", "")), empty_ok=True))


def _save_record(plate: Plate, fingerprint: str, frames: Set[int]) -> None:
    """Write the record whole (temp file renamed over it: a link there is replaced, never
    written through)."""
    fs.make_folder(os.path.dirname(plate.pattern))
    fs.write_json(_record_path(plate), {"fingerprint": fingerprint,
                                        "frames": format_frame_ranges(sorted(frames))})


class InputRender:
    """Renders the node's input for the engine in slices on the main thread, with a progress
    bar whose Cancel stops it, so the UI stays responsive; `then()` runs when every frame
    wanted is on disk. `extend` asks for more frames (a newer playhead) and a new `then`.
    `owner` (the node's controller) gives `node()`, `input_current(job)` (False once the
    graph changed or another job replaced this one: it stops) and `input_failed(job, why)`."""

    def __init__(self, owner: Any, plate: Plate, fingerprint: str, done: Set[int]) -> None:
        self.owner, self.plate, self.fingerprint, self.done = owner, plate, fingerprint, done
        self.wanted: List[int] = []
        self.then: Callable[[], None] = lambda: None
        self.task: Any = None
        self.running = False
        self.failed = False  # rendering failed: no retry until replaced

    def extend(self, last: int, then: Callable[[], None]) -> None:
        """Render frames plate.first..last (those not done), then call `then`."""
        self.wanted = [f for f in range(self.plate.first, last + 1) if f not in self.done]
        self.then = then
        if not self.running and not self.failed:
            self.running = True
            if nuke.GUI:
                self.task = nuke.ProgressTask(f"VRMBG: rendering {self.plate.source} for the engine")
            nuke.executeInMainThread(self.step)

    def step(self) -> None:
        """One slice (main thread); queues the next one."""
        node = self.owner.node()
        pending = [f for f in self.wanted if f not in self.done]
        if node is None or (self.task is not None and self.task.isCancelled()) or \
                not self.owner.input_current(self):
            return self._end()
        if pending and nuke.executing():
            nuke.executeInMainThread(self.step)  # a render is running: after it
            return
        if pending:
            chunk = pending[:SLICE_FRAMES]
            try:
                render_input(node, self.plate, chunk[0], chunk[-1], self.done)
            except (RuntimeError, OSError, ValueError) as error:
                self._end()
                return self.owner.input_failed(self, f"rendering its input: {error}")
            if not self.owner.input_current(self):  # changed meanwhile: not this graph's
                return self._end()
            _save_record(self.plate, self.fingerprint, self.done)
            if self.task is not None:
                self.task.setProgress(int(100 * (len(self.wanted) - len(pending) + len(chunk))
                                          / len(self.wanted)))
            if len(pending) > len(chunk):
                nuke.executeInMainThread(self.step)
                return
        then = self.then
        self._end()
        then()

    def _end(self) -> None:
        self.running, self.task = False, None


def render_input(group: Any, plate: Plate, first: int, last: int, done: Set[int]) -> None:
    """Render the node's input for frames first..last to the plate's EXR sequence (those not
    in `done`, which gets them). Main thread, never inside a render (nuke.execute)."""
    wanted = [f for f in range(first, last + 1) if f not in done]
    if plate.direct or not wanted:
        return
    write = graph.input_write(group)
    write["file"].setValue(plate.pattern)
    write["disable"].setValue(False)
    try:
        for start, end in frame_runs(wanted):
            nuke.execute(write, start, end, 1)
    finally:
        write["disable"].setValue(True)
    done.update(wanted)
