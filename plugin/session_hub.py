"""The host process's mattes on one engine client, and the engine's events routed to them.

    hub = SessionHub(get_client, on_change=redraw, on_opened=apply)   # one per host process
    session = hub.session(node_id)                                    # one per matte

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, List, Optional

from .host_session import HostSession
from .requests import Event


class SessionHub:
    """A host process's mattes on one engine client, and the engine's events routed to them.

    `get_client()` returns the client to use now (a new one replaces the old: the sessions
    open in the old one are lost); `on_change(session)` and `on_opened(session, answer)` are
    the host's hooks, called from any thread.
    """

    def __init__(self, get_client: Callable[[], Any], *,
                 on_change: Optional[Callable[[HostSession], None]] = None,
                 on_opened: Optional[Callable[[HostSession, Event], None]] = None) -> None:
        self._get_client = get_client
        self._on_change = on_change
        self._on_opened = on_opened
        self._lock = threading.Lock()
        self._sessions: Dict[str, HostSession] = {}
        self._routes: Dict[str, HostSession] = {}
        self._listening: Any = None  # the client whose events we hear

    def client(self) -> Any:
        """The engine client now (listened to)."""
        client = self._get_client()
        with self._lock:
            old = self._listening
            if client is old:
                return client
            self._listening, self._routes = client, {}
            sessions = list(self._sessions.values())
        if old is not None:
            old.remove_listener(self._route)
            for each in sessions:
                each.lost()
        client.add_listener(self._route)
        return client

    def session(self, owner: str) -> HostSession:
        """The matte `owner`'s session (made on first use)."""
        with self._lock:
            found = self._sessions.get(owner)
            if found is None:
                found = self._sessions[owner] = HostSession(owner, self)
            return found

    def sessions(self) -> List[HostSession]:
        """Every matte's session."""
        with self._lock:
            return list(self._sessions.values())

    def forget(self, owner: str) -> None:
        """A matte was deleted: drop it and close its engine session."""
        with self._lock:
            found = self._sessions.pop(owner, None)
        if found is not None and found.session:
            self.close(found.session)

    def forget_all(self) -> None:
        """Drop every matte (another file was opened, or the engine was shut down)."""
        for each in self.sessions():
            self.forget(each.owner)

    def chain_folders(self, cache_root: str) -> List[str]:
        """The chain folders (relative to `cache_root`) of every matte open in that cache:
        what `paths.adopt_unsaved_cache` moves when the file is first saved (this file's
        chains only; other chains of the same shots stay with whoever uses them)."""
        real = os.path.realpath(cache_root)
        return [each.chain_folder for each in self.sessions()
                if each.chain_folder and os.path.realpath(each.cache_root) == real]

    def route(self, session: str, host_session: HostSession) -> None:
        """Send the events of engine session `session` to `host_session`."""
        with self._lock:
            self._routes[session] = host_session

    def close(self, session: str) -> None:
        """Close an engine session quietly (the worker may be gone: closed is closed)."""
        with self._lock:
            self._routes.pop(session, None)
            client = self._listening
        try:
            if client is not None:
                client.close(session)
        except Exception:
            pass

    def changed(self, session: HostSession) -> None:
        if self._on_change is not None:
            self._on_change(session)

    def opened(self, session: HostSession, answer: Event) -> None:
        if self._on_opened is not None:
            self._on_opened(session, answer)

    def _route(self, event: Event) -> None:
        """Client listener (reader thread): each event to the matte whose session it names."""
        if event.get("event") in ("worker_died", "worker_restarted"):
            for each in self.sessions():
                if event["event"] == "worker_died":
                    each.on_worker_died(event)
                else:
                    each.on_worker_restarted(event)
            return
        with self._lock:
            found = self._routes.get(str(event.get("session") or ""))
        if found is not None:
            found.on_event(event)
