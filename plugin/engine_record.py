"""The record an installer leaves beside the plugin copy: which Python runs the engine.

`engine.json` = {"python": "/abs/engine/python", "engine_version": "...", "installed": "..."}.
Standard library only.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, Dict

from . import fs

RECORD_NAME = "engine.json"


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
