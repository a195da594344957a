"""Open shots by session id: what was asked for, the engine session, and what it knows.

The engine's `MatteSession` is built lazily: when a model release has dropped it, the next
ensure opens it again with the same plates and settings (and so reloads the model).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from ...plugin.settings import Settings
from ..errors import EXIT_MODEL, UsageError
from .protocol import BadRequest


@dataclass
class WorkerSession:
    """One open shot under one set of settings."""

    id: str
    input: str
    settings: Settings
    preview: bool = False
    movie_start: int = 1001
    matte: Any = None  # the engine's MatteSession once opened (None after a release)
    facts: dict[str, Any] = field(default_factory=dict)  # the `opened` fields
    cached: set[int] = field(default_factory=set)  # valid cached frames as last seen
    seconds_per_frame: float = 0.0
    last_error: str = ""
    stale: bool = False  # models were released while it computed: drop `matte` after
    closed: bool = False
    ready: threading.Event = field(default_factory=threading.Event)  # open finished
    open_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while computing

    def summary(self) -> dict[str, Any]:
        """What `status` says about the session."""
        facts = self.facts
        return {"cached_count": len(self.cached), "total": facts.get("total", 0),
                "frames": facts.get("frames", ""), "matte_pattern": facts.get("matte_pattern", ""),
                "device": facts.get("device", ""), "precision": facts.get("precision", ""),
                "seconds_per_frame": round(self.seconds_per_frame, 4),
                "last_error": self.last_error, "open": self.ready.is_set() and not self.open_error}


def resolve_settings(values: dict[str, Any], request_id: Any) -> Settings:
    """Schema-checked settings with every default filled in (BadRequest names a bad one)."""
    from ..model.trust import REFUSED, remote_code_allowed

    try:
        settings = Settings.from_mapping(values)
    except KeyError as exc:
        raise BadRequest(f"open: {exc.args[0]}", request_id) from None
    except ValueError as exc:
        raise BadRequest(f"open: setting {exc}", request_id) from None
    if settings.trust_remote_code and not remote_code_allowed():
        raise BadRequest(f"open: trust_remote_code refused: {REFUSED}", request_id,
                         code=EXIT_MODEL)
    return settings


class SessionRegistry:
    """Sessions by id; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, WorkerSession] = {}
        self._numbers = itertools.count(1)

    def new_id(self) -> str:
        """A session id no open session has."""
        with self._lock:
            while True:
                candidate = f"s{next(self._numbers)}"
                if candidate not in self._sessions:
                    return candidate

    def add(self, session: WorkerSession) -> WorkerSession | None:
        """Register a session; returns the one it replaces (same id), if any."""
        with self._lock:
            old = self._sessions.get(session.id)
            self._sessions[session.id] = session
            return old

    def get(self, session_id: str, request_id: Any = None) -> WorkerSession:
        """The session called `session_id`; BadRequest when there is none."""
        with self._lock:
            found = self._sessions.get(session_id)
        if found is None:
            raise BadRequest(f"unknown session {session_id!r} (open it first)", request_id)
        return found

    def remove(self, session_id: str) -> WorkerSession | None:
        """Forget a session; returns it (None when it was not open)."""
        with self._lock:
            return self._sessions.pop(session_id, None)

    def all(self) -> list[WorkerSession]:
        """Every open session, in opening order."""
        with self._lock:
            return list(self._sessions.values())

    def drop_models(self) -> None:
        """After a model release: every session re-opens (and reloads its model) on its next
        ensure; a session computing right now drops its engine session when it finishes."""
        for session in self.all():
            if session.lock.acquire(blocking=False):
                try:
                    if session.ready.is_set():
                        session.matte = None
                finally:
                    session.lock.release()
            else:
                session.stale = True


def check_frames(request_id: Any, frame: Any, frames: str) -> list[int]:
    """The frames an ensure asks for, sorted (BadRequest for a malformed range)."""
    if frame is not None:
        return [int(frame)]
    from ..io.frames import parse_frame_spec

    try:
        return parse_frame_spec(frames)
    except UsageError as exc:
        raise BadRequest(f"ensure: {exc}", request_id) from None
