"""The worker's output: one JSON event per line, written whole by whichever thread sends it."""

from __future__ import annotations

import json
import math
import threading
from typing import Any, BinaryIO


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: such numbers go out as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_line(message: dict[str, Any]) -> bytes:
    """One JSON line in UTF-8; text that UTF-8 cannot carry (a lone surrogate, as a path
    from a folder whose name is not UTF-8 reads in Python) goes out as JSON escapes."""
    try:
        return (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(message, ensure_ascii=True) + "\n").encode("ascii")


class EventWriter:
    """Writes events to a binary stream; a lock keeps lines from two threads whole."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False  # the reader went away (host gone): nothing more can be said

    def send(self, event: str, request_id: Any = None, **fields: Any) -> None:
        """Write `{"id": request_id, "event": event, ...fields}` as one flushed line."""
        message = {"id": request_id, "event": event}
        message.update({k: _finite(v) for k, v in fields.items()})
        data = encode_line(message)
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.broken = True
