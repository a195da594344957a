"""The record an installer leaves beside the plugin copy: which Python runs the engine.

`engine.json` = {"python": "/abs/engine/python", "engine_version": "...", "installed": "...",
"chosen_python": "..."}: the last is the person's own choice in a host's preferences, kept
here because a host may drop its preferences (Blender does when the add-on is disabled).
Standard library only.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, Dict

from . import fs

RECORD_NAME = "engine.json"
CHOSEN = "chosen_python"  # the host preference "Engine Python" (empty: the installer's)


def record_path(folder: str = "") -> str:
    """Where the record lives: in `folder`, or beside this module (the installed plugin copy)."""
    return os.path.join(folder or os.path.dirname(os.path.abspath(__file__)), RECORD_NAME)


def read_record(folder: str = "") -> Dict[str, Any]:
    """The installer's record, or {} when there is none or it cannot be read."""
    try:
        with open(record_path(folder), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(folder: str, python: str, engine_version: str) -> str:
    """Write the record into `folder` (atomically); returns its path."""
    path = record_path(folder)
    data = {"python": os.path.abspath(python), "engine_version": engine_version,
            "installed": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return fs.write_json(path, data, indent=2)


def chosen_python(folder: str = "") -> str:
    """The engine Python chosen in the host's preferences ("" when none was)."""
    return str(read_record(folder).get(CHOSEN) or "")


def choose_python(python: str, folder: str = "") -> None:
    """Keep the host preference "Engine Python" in the record (atomically), where it
    outlives the host's own preferences."""
    record = read_record(folder)
    record[CHOSEN] = str(python)
    fs.write_json(record_path(folder), record, indent=2)
