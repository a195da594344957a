"""The node graph above a node: which VRMBG mattes a Write uses at which frames, and the
fingerprint of what feeds a VRMBG node.

A render reaches VRMBG nodes through Dots, Switches (the branch shown), disabled nodes,
Groups, gizmos (whose Class() is their own name), LiveGroups and the Input of the Group that
holds the Write. Time nodes the walk can follow exactly (TimeOffset, FrameHold, FrameRange)
move the frame; any other node that mixes or resamples frames stops the render with its name.
Knobs are read at the frame walked (animation included). A frame the walk misses (a node
outside RESAMPLING that reads other frames) fails the render at the node's gate, never black.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any, List, Set, Tuple

import nuke

from . import knobs
from .plugin.paths import frame_file

_SEQUENCE = re.compile(r"#+")
RESAMPLING = {"Retime", "TimeWarp", "Kronos", "OFlow", "OFlow2", "FrameBlend", "TimeEcho",
              "TimeBlur", "MotionBlur", "VectorBlur", "TimeClip", "AppendClip"}
# knobs that change nothing a matte depends on
_LAYOUT_KNOBS = {"xpos", "ypos", "selected", "label", "note_font", "note_font_size",
                 "note_font_color", "tile_color", "gl_color", "hide_input", "postage_stamp",
                 "knobChanged", "onCreate", "onDestroy", "updateUI", "autolabel", "name",
                 "indicators", "cached", "dope_sheet", "bookmark", "icon", knobs.STATUS,
                 knobs.FRAME_RANGE, knobs.AUTO}


def is_vrmbg(node: Any) -> bool:
    """True for a VRMBG node (a Group carrying the node's id knob)."""
    return node is not None and node.Class() == "Group" and node.knob(knobs.ID_KNOB) is not None


def _name(node: Any) -> str:
    """A node's identity for a walk: its full name (Nuke hands out a new Python object for
    the same node on each access, so object ids neither dedupe nor stay unique)."""
    return node.fullName()


def _is_group(node: Any) -> bool:
    return isinstance(node, nuke.Group) and node.output() is not None


def _above(node: Any, frame: int) -> List[Tuple[Any, int]]:
    """The nodes (and their frames) whose pixels `node` shows at `frame`; ValueError for a
    node that resamples time. Knobs are read at `frame` (animation and expressions)."""
    kind = node.Class()

    def at(name: str) -> Any:
        return node[name].getValueAt(frame)
    disabled = node.knob("disable") is not None and at("disable")
    if kind == "Input":
        group = node.parent()
        number = int(node["number"].value()) if node.knob("number") is not None else 0
        outer = group.input(number) if group is not None and group is not nuke.root() else None
        return [(outer, frame)] if outer is not None else []
    if disabled or kind in ("Dot", "FrameRange"):
        return [(node.input(0), frame)]
    if _is_group(node) and not is_vrmbg(node):
        return [(node.output(), frame)]
    if kind == "Switch":
        which = int(round(float(at("which"))))
        return [(node.input(min(max(which, 0), max(node.inputs() - 1, 0))), frame)]
    if kind == "TimeOffset":
        if at("reverse_input"):
            raise ValueError(f"{node.fullName()} reverses its input")
        return [(node.input(0), frame - int(round(float(at("time_offset")))))]
    if kind == "FrameHold":
        first, step = int(round(float(at("first_frame")))), int(round(float(at("increment"))))
        return [(node.input(0), first + ((frame - first) // step) * step if step else first)]
    if kind in RESAMPLING:
        raise ValueError(f"{node.fullName()} ({kind}) mixes or resamples frames")
    return [(n, frame) for n in node.dependencies(nuke.INPUTS | nuke.HIDDEN_INPUTS)]


def mattes_for(write: Any, frame: int) -> List[Tuple[Any, int]]:
    """The VRMBG nodes above `write` and the frame each must make exact for `write`'s
    `frame`, furthest upstream first. RuntimeError names a time node between a VRMBG node and
    the Write that the frame cannot be followed through."""
    found: List[Tuple[Any, int]] = []
    seen: Set[Tuple[str, int, bool]] = set()  # a node reached past a time change is not
    stack = [(write, frame, "")]                # done by reaching it directly, nor the reverse
    while stack:
        node, at, blocked = stack.pop()
        if node is None or (_name(node), at, bool(blocked)) in seen:
            continue
        seen.add((_name(node), at, bool(blocked)))
        if is_vrmbg(node):
            if blocked:
                raise RuntimeError(f"{node.fullName()} feeds {write.fullName()} through "
                                   f"{blocked}: its exact matte cannot be given for that "
                                   "frame (precompute the time change after the matte, or "
                                   "put the matte after it)")
            found.append((node, at))
        try:
            stack.extend((n, f, blocked) for n, f in _above(node, at))
        except ValueError as why:
            stack.extend((n, at, blocked or str(why)) for n in
                         node.dependencies(nuke.INPUTS | nuke.HIDDEN_INPUTS))
    return list(reversed(found))


def _files_state(path: str, first: int, last: int) -> str:
    """The folder's and every frame's size and mtime (a frame re-rendered in place shows)."""
    pattern = re.sub(r"%0?(\d*)d", lambda m: "#" * max(int(m.group(1) or 1), 1), path)
    frames = range(first, last + 1) if _SEQUENCE.search(os.path.basename(pattern)) else range(first, first + 1)
    parts = []
    for target in [os.path.dirname(pattern)] + [frame_file(pattern, f) for f in frames]:
        try:
            info = os.stat(target)
            parts.append(f"{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return ",".join(parts)


def _knob_text(knob: Any) -> str:
    try:
        return knob.toScript()
    except Exception:  # a knob without a saved form (a button, a tab)
        return ""


def fingerprint(source: Any) -> str:
    """What makes the pixels `source` shows: every node above it (inside Groups too), its
    knob values (expressions and animation included), its files' size and mtime, and its
    frame range. A matte computed under another fingerprint is never shown as valid."""
    lines: List[str] = []
    seen: Set[str] = set()
    stack = [source]
    while stack:
        node = stack.pop()
        if node is None or _name(node) in seen:
            continue
        seen.add(_name(node))
        lines.append(f"{node.fullName()} {node.Class()} {node.firstFrame()}-{node.lastFrame()}")
        lines += [f" {k.name()}={_knob_text(k)}" for k in node.allKnobs()
                  if k.name() not in _LAYOUT_KNOBS]
        path = nuke.filename(node) if node.knob("file") is not None else None
        if path:
            lines.append(" files " + _files_state(path, node.firstFrame(), node.lastFrame()))
        if _is_group(node) and not is_vrmbg(node):
            stack.append(node.output())
        if node.Class() == "Input" and node.parent() is not nuke.root():
            stack.append(node.parent().input(int(node["number"].value())))
        stack.extend(node.dependencies(nuke.INPUTS | nuke.HIDDEN_INPUTS | nuke.EXPRESSIONS))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
