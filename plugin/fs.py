"""The one module in plugin/ that writes, renames and deletes files.

The plugin layer writes little: the installer's record of the engine's Python
(`engine_record`) and the records of the workers this machine's hosts started
(`worker_registry`). Both go through here, so the rules are in one place: a JSON file is
written whole to a temp file beside it and renamed over the old one (a reader sees the old
file or the new one, never a part), and a delete that finds nothing is not an error.
Standard library only (the engine's own file-system module is `core/fs.py`).
"""

from __future__ import annotations

import json
import os
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
        os.replace(temp, path)
    except BaseException:
        remove_file(temp)
        raise
    return path


def remove_file(path: str) -> bool:
    """Delete one file if it is there; True when it was removed (never raises OSError)."""
    if not path:
        return False
    try:
        os.remove(path)
        return True
    except OSError:
        return False
