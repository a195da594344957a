"""The one module in plugin/ that writes, renames and deletes files.

The plugin layer writes little: the installer's record of the engine's Python
(`engine_record`), the records of the workers this machine's hosts started
(`worker_registry`), and the cache folders an unsaved file's mattes move to when the file is
first saved (`paths.adopt_unsaved_cache`). All go through here, so the rules are in one
place: a JSON file is written whole to a temp file beside it and renamed over the old one (a
reader sees the old file or the new one, never a part), a delete that finds nothing is not an
error, and no rename, copy or delete goes through a symbolic link.
Standard library only (the engine's own file-system module is `core/fs.py`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from typing import Any

TEMP_SUFFIX = ".tmp-"  # `NAME.tmp-PID`: the installer never copies names holding ".tmp"


def make_folder(path: str, *, private: bool = False) -> None:
    """Create `path` and its missing parents (no error when it exists); `private`: only
    this user may read or write a folder made here."""
    if private:
        os.makedirs(path, mode=0o700, exist_ok=True)
    else:
        os.makedirs(path, exist_ok=True)


def write_json(path: str, data: Any, *, indent: int | None = None) -> str:
    """Write `data` as JSON to `path` atomically (temp file + rename); returns `path`."""
    temp = f"{path}{TEMP_SUFFIX}{os.getpid()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=indent)
            handle.write("\n")
        replace_with(temp, path)
    except BaseException:
        remove_file(temp)
        raise
    return path


def replace_with(finished: str, path: str) -> None:
    """Put the finished file `finished` (written beside `path`) in `path`'s place in one
    step: a reader sees the old file or the new one; a link at `path` is replaced, never
    written through."""
    os.replace(finished, path)


def remove_file(path: str) -> bool:
    """Delete one file if it is there; True when it was removed (never raises OSError)."""
    if not path:
        return False
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def rename(source: str, target: str) -> None:
    """Rename `source` to `target` (a file or a folder; links are moved, never followed).
    Refuses to replace anything at `target`; OSError when it cannot (another device included:
    errno EXDEV)."""
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "already there", target)
    os.rename(source, target)


def copy_file(source: str, target: str) -> None:
    """Copy one regular file's bytes and times (never through a link at either end)."""
    if os.path.islink(source) or os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "a link or an existing file", target)
    shutil.copy2(source, target, follow_symlinks=False)


def remove_tree(path: str) -> None:
    """Delete a folder and everything in it; a link inside is removed itself, never what it
    leads to, and `path` itself being a link is refused (OSError)."""
    if os.path.islink(path):
        raise IsADirectoryError(errno.ELOOP, "a link, not a folder", path)
    for folder, folders, files in os.walk(path, topdown=False, followlinks=False):
        for name in files + [f for f in folders if os.path.islink(os.path.join(folder, f))]:
            os.remove(os.path.join(folder, name))
        for name in folders:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.rmdir(full)
    os.rmdir(path)
