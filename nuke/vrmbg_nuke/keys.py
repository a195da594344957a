"""Correction keyframes: the keys input's alpha, at the frames the node lists, rendered to an
EXR sequence in the cache that the engine takes as its `keyframes` setting.

A key file is rendered again when the keys input changed since (its fingerprint, in
`keys.json` beside the files), and a file whose frame is no longer listed is deleted; the
engine hashes each file, so only the frames from a changed keyframe on are computed again.
Rendering runs on the main thread outside renders (Nuke runs one at a time); a render that
finds a key it uses not rendered since the keys input last changed stops with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List

import nuke

from . import graph, knobs
from .plugin import fs
from .plugin.frame_ranges import parse_frame_ranges
from .plugin.paths import NUKE_KEYS_FOLDER, frame_file

NAME = re.compile(r"key\.(-?\d+)\.exr")


@dataclass
class Keys:
    """The node's keyframes now: the engine's pattern, the frames listed, and those whose
    file must be rendered or deleted before the engine may read the folder."""

    pattern: str = ""
    frames: List[int] = field(default_factory=list)
    stale: List[int] = field(default_factory=list)
    fingerprint: str = ""  # of the keys input
    digest: str = ""  # of what is on disk (part of what makes the mattes valid)
    failed: bool = False  # rendering them failed: not tried again until something changes


def folder(group: Any, node_id: str) -> str:
    """The node's key files, relative to the cache root."""
    digest = hashlib.sha256(node_id.encode("utf-8")).hexdigest()[:12]
    return os.path.join(NUKE_KEYS_FOLDER, f"{group.name()}-{digest}")


def _record(pattern: str) -> Dict[str, str]:
    try:
        with open(os.path.join(os.path.dirname(pattern), "keys.json"), encoding="utf-8") as f:
            found = json.load(f)
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def state(group: Any, root: str, node_id: str, fingerprint: str) -> Keys:
    """What the keyframe list and the keys input ask for; ValueError says what is wrong."""
    listed = group.knob(knobs.KEY_LIST)
    frames = parse_frame_ranges(listed.value() if listed else "", empty_ok=True)
    pattern = os.path.join(root, folder(group, node_id), "key.####.exr")
    if not frames:
        return Keys(pattern)
    if graph.keys_source(group) is None:
        raise ValueError("keyframes are listed: connect the corrections (a Roto, RotoPaint or "
                         "any alpha) to the node's keys input")
    record = _record(pattern)
    try:
        names = os.listdir(os.path.dirname(pattern))
    except OSError:
        names = []
    on_disk = {int(m.group(1)) for m in map(NAME.fullmatch, names) if m}
    stale = {f for f in frames if record.get(str(f)) != fingerprint or f not in on_disk}
    digest = hashlib.sha256(json.dumps(sorted(record.items())).encode()).hexdigest()[:16]
    return Keys(pattern, frames, sorted(stale | (on_disk - set(frames))), fingerprint, digest)


def missing(keys: Keys, frame: int) -> List[int]:
    """The keyframes up to `frame` whose file is stale or gone (a render cannot make them)."""
    gone = {k for k in keys.frames if not os.path.isfile(frame_file(keys.pattern, k))}
    return sorted(k for k in gone.union(keys.stale) if k <= frame)


def render(group: Any, keys: Keys) -> None:
    """Render the stale key files and delete the unlisted ones (main thread, never inside a
    render); each file is written beside and renamed into place, never through a link."""
    where = os.path.dirname(keys.pattern)
    if not keys.pattern or not (keys.frames or os.path.isdir(where)):
        return
    temp = os.path.join(where, "rendering")
    folders = (os.path.dirname(where), where, temp)
    linked = [path for path in folders if os.path.islink(path)]
    if linked:  # before making any of them
        raise ValueError(f"{linked[0]} is a link: key files are never written through one")
    for path in folders:
        fs.make_folder(path)
    record = {k: v for k, v in _record(keys.pattern).items() if int(k) in keys.frames}
    write = graph.inner(group, graph.KEY_WRITE)
    write["file"].setValue(os.path.join(temp, "key.####.exr"))
    write["disable"].setValue(False)
    try:
        for frame in keys.stale:
            record.pop(str(frame), None)
            if frame in keys.frames:
                nuke.execute(write, frame, frame, 1)
                fs.replace_with(frame_file(write["file"].value(), frame),
                                frame_file(keys.pattern, frame))
                record[str(frame)] = keys.fingerprint
        for match in map(NAME.fullmatch, os.listdir(where)):
            if match and int(match.group(1)) not in keys.frames:
                fs.remove_file(os.path.join(where, match.group(0)))
    finally:
        write["disable"].setValue(True)
        fs.write_json(os.path.join(where, "keys.json"), record)
