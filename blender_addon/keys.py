"""Correction keyframes: the key image's alpha, at the frames the matte lists, written as EXRs
in the cache that the engine takes as its `keyframes` setting.

A key file is written again when its source changed since (its fingerprint, in `keys.json`
beside the files), and a file whose frame is no longer listed is deleted; the engine hashes
each file, so only the frames from a changed keyframe on are computed again. Files are
written on the main thread outside renders (a frame change, a keyframe set or a setting
changed, Analyse); a render that needs a key not written since its source changed stops.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import re

import bpy

from . import node_group
from .plugin import fs
from .plugin.frame_ranges import parse_frame_ranges
from .plugin.paths import cache_root_problem, frame_file, sequence_pattern

NAME = re.compile(r"key\.(-?\d+)\.exr")
RECORD = "keys.json"


def pattern(folder: str) -> str:
    """The engine's `keyframes` pattern for a matte's key folder."""
    return os.path.join(folder, "key.####.exr")


def listed(tree: bpy.types.NodeTree) -> list:
    """The frames the matte lists as keyframes (ValueError for bad text)."""
    return parse_frame_ranges(tree.vrmbg.key_frames, empty_ok=True)


def _record(folder: str) -> dict:
    try:
        with open(os.path.join(folder, RECORD), encoding="utf-8") as source:
            found = json.load(source)
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def digest(folder: str) -> str:
    """What the key files on disk are (part of what makes the cached mattes valid)."""
    record = sorted(_record(folder).items())
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16] if record else ""


def _source_file(image: bpy.types.Image, frame: int) -> str:
    """The file holding `frame` of a key image ("" for an image edited or made in Blender)."""
    if image.source == "SEQUENCE":
        return frame_file(sequence_pattern(bpy.path.abspath(image.filepath)), frame)
    if image.source == "FILE" and not image.packed_file and not image.is_dirty:
        return bpy.path.abspath(image.filepath)
    return ""


def fingerprint(tree: bpy.types.NodeTree, frame: int) -> str:
    """What keyframe `frame` is made from now; ValueError says what is missing."""
    image = tree.vrmbg.key_image
    if image is None:
        raise ValueError("keyframes are listed: choose the key image (the artist's mattes)")
    if image.source not in ("FILE", "SEQUENCE", "GENERATED"):
        raise ValueError("the key image %s must be an image or an image sequence" % image.name)
    path = _source_file(image, frame)
    if path:
        try:
            facts = [path, os.stat(path).st_mtime_ns, os.path.getsize(path)]
        except OSError:
            raise ValueError("keyframe %d: no file %s" % (frame, path)) from None
    else:
        facts = [image.name, hashlib.sha256(_pixels(image).tobytes()).hexdigest()]
    return hashlib.sha256(json.dumps(facts + [tree.vrmbg.plate]).encode()).hexdigest()[:16]


def stale(tree: bpy.types.NodeTree, folder: str, upto: float = float("inf")) -> list:
    """Listed keyframes up to `upto` whose file is gone or older than their source."""
    record = _record(folder)
    return [f for f in listed(tree) if f <= upto and (
        record.get(str(f)) != fingerprint(tree, f)
        or not os.path.isfile(frame_file(pattern(folder), f)))]


def write(tree: bpy.types.NodeTree, folder: str) -> None:
    """Write the stale key files and delete the unlisted ones (main thread, never inside a
    render); each is written beside its name and renamed into place, never through a link."""
    frames = listed(tree)
    if not frames and not os.path.isdir(folder):
        return
    problem = cache_root_problem(os.path.dirname(os.path.dirname(folder)))
    if problem:
        raise ValueError(problem)
    for path in (os.path.dirname(folder), folder):
        if os.path.islink(path):
            raise ValueError("%s is a link: key files are never written through one" % path)
        fs.make_folder(path)
    before = _record(folder)
    record = {k: v for k, v in before.items() if int(k) in frames}
    try:
        for frame in stale(tree, folder):
            record.pop(str(frame), None)
            temp = os.path.join(folder, "key.%d.tmp-%d.exr" % (frame, os.getpid()))
            try:
                _save(_alpha(tree, frame), temp)
                fs.replace_with(temp, frame_file(pattern(folder), frame))
            finally:
                fs.remove_file(temp)
            record[str(frame)] = fingerprint(tree, frame)
        for match in map(NAME.fullmatch, os.listdir(folder)):
            if match and int(match.group(1)) not in frames:
                fs.remove_file(os.path.join(folder, match.group(0)))
    finally:
        if record != before or not os.path.isfile(os.path.join(folder, RECORD)):
            fs.write_json(os.path.join(folder, RECORD), record)


def _pixels(image: bpy.types.Image) -> array.array:
    """The image's float pixels, row after row, `image.channels` values each."""
    width, height = image.size
    if not width or not height:
        raise ValueError("the key image %s cannot be read" % image.name)
    pixels = array.array("f", bytes(4 * width * height * image.channels))
    image.pixels.foreach_get(pixels)
    return pixels


def _alpha(tree: bpy.types.NodeTree, frame: int) -> tuple:
    """Keyframe `frame`'s matte at the plate's size, (width, height, values): the key image's
    alpha, or its grey."""
    image = tree.vrmbg.key_image
    loaded = None
    if image.source == "SEQUENCE":  # its frame, read as values
        image = loaded = bpy.data.images.load(_source_file(image, frame), check_existing=False)
        loaded.colorspace_settings.is_data = True
    has_alpha = image.depth in (32, 64, 128)
    size = tuple(node_group.plate_image(tree).size)
    scaled = image.copy() if all(size) and tuple(image.size) != size else None
    try:
        if scaled is not None:
            scaled.scale(*size)
        source = scaled or image
        width, height, channels = source.size[0], source.size[1], source.channels
        pixels = _pixels(source)
    finally:
        for made in (loaded, scaled):
            if made is not None:
                bpy.data.images.remove(made)
    if has_alpha and channels == 4:
        return width, height, pixels[3::4]
    colours = [pixels[c::channels] for c in range(min(channels, 3))]
    return width, height, array.array("f", map(lambda *rgb: sum(rgb) / len(rgb), *colours))


def _save(alpha: tuple, path: str) -> None:
    """A float RGBA EXR whose every channel is the matte (`_alpha`'s width, height, values)."""
    width, height, values = alpha
    image = bpy.data.images.new("VRMBG key", width, height, alpha=True, float_buffer=True,
                                is_data=True)
    try:
        rgba = array.array("f", bytes(16 * width * height))
        for channel in range(4):
            rgba[channel::4] = values
        image.pixels.foreach_set(rgba)
        image.filepath_raw, image.file_format = path, "OPEN_EXR"
        image.save()
    finally:
        bpy.data.images.remove(image)
