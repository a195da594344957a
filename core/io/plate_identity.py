"""Which shot a plate is: its canonical location, part, name, content identity and shot id.

The cache keys a shot's folder on these (`engine.cache`), a render stamps its outputs with
them (`render`), and both must give one answer however a plate was asked for: spellings of
one sequence (`####`, `%04d`, `@@@@`, `$F4`, a symlinked folder) and ways of naming one EXR
part (`--part 1`, `--part beauty`) are one shot, while other pictures behind the same file
names are not. Nothing here writes a file; a plate frame is read (header, or bytes for the
content identity) only where the answer needs it.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from .frames import format_frame


def plate_source(plates: Any) -> str:
    """The plate's canonical location: real folder + pattern with a `#` token, or movie path.

    Spellings of one sequence (`####`, `%04d`, `@@@@`, `$F4`, and `###` or `#` matching the
    same 4-digit files, a symlinked folder) give the same text, so they share one cache.
    """
    pattern = getattr(plates, "pattern", None)
    if getattr(pattern, "is_sequence", False):
        folder = os.path.realpath(pattern.folder or ".")
        token = "#" * _file_padding(plates, int(pattern.padding))
        return os.path.join(folder, f"{pattern.prefix}{token}{pattern.tail}")
    text = getattr(pattern, "pattern", None) or getattr(plates, "path", None)
    if text is None and isinstance(pattern, str):
        text = pattern
    return os.path.realpath(str(text)) if text else repr(plates)


def _file_padding(plates: Any, padding: int) -> int:
    """The padding the files on disk actually have: a `#` or `###` token matches 4-digit
    files too (frame numbers are never cut), so the first frame's digits count as well."""
    first = getattr(plates, "first_frame", None)
    if first is None:
        return max(1, padding)
    return max(1, padding, len(format_frame(int(first), max(1, padding))))


def plate_part(plates: Any) -> str:
    """The EXR part a plate sequence reads, by name ("" for single-part files and movies).

    `--part 1`, `--part beauty` and no `--part` at all name one part when they select the
    same one, so they are one shot; the name comes from the first frame's header.
    """
    if not getattr(plates, "part", "") and not hasattr(plates, "path_for"):
        return ""
    try:
        info = plates.info(plates.first_frame)
    except Exception:  # unreadable here: the render reports it when it reads the frame
        return str(getattr(plates, "part", "") or "")
    parts = tuple(getattr(info, "parts", ()) or ())
    if len(parts) <= 1:
        return ""
    return str(parts[int(getattr(info, "part_index", 0) or 0)])


_CONTENT_IDS: dict[tuple, str] = {}  # (path, inode, size, mtime) -> content id, per process


def plate_content_id(plates: Any, frame: int) -> str:
    """Identity of the pictures in one plate frame: a hash of its file's bytes (of its
    decoded pixels for a movie), 16 hex characters.

    Where the plates are mounted and how the pattern is spelled do not enter it, so a farm
    node reading the same files through another mount recognises them; a v001 and a v002
    folder with the same file names but other pictures never match.
    """
    path_for = getattr(plates, "path_for", None)
    if path_for is None:
        return hashlib.sha256(plates.fingerprint(frame, content=True).encode()).hexdigest()[:16]
    path = path_for(frame)
    try:
        stat = os.stat(path)
        memo = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    except OSError:
        memo = None
    found = _CONTENT_IDS.get(memo) if memo else None
    if found is None:
        found = hashlib.sha256(plates.fingerprint(frame, content=True).encode()).hexdigest()[:16]
        if memo:
            _CONTENT_IDS[memo] = found
    return found


def plate_name(plates: Any) -> str:
    """A file-name friendly shot name from the plate pattern (`sh010` for sh010.####.exr)."""
    pattern = getattr(plates, "pattern", None)
    prefix = getattr(pattern, "prefix", None)
    if prefix is None:
        prefix = os.path.splitext(os.path.basename(plate_source(plates)))[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", prefix).strip("._-")
    return name or "matte"


def shot_id(plates: Any, layer: str = "", part: str = "") -> str:
    """Folder name of a shot: its name plus a short hash of its path and channel selection."""
    digest = hashlib.sha256("\0".join((plate_source(plates), layer, part)).encode()).hexdigest()
    return f"{plate_name(plates)}-{digest[:8]}"


def shot_label(plates: Any, layer: str = "", part: str = "") -> str:
    """The shot's readable name in output stamps: the plate file name (canonical `#` token)
    plus layer and part. Which shot a matte belongs to is decided by `plate_id`, not this."""
    name = os.path.basename(plate_source(plates))
    return "|".join(x for x in (name, layer, str(part or "")) if x) or name
