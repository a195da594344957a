"""Requests to the engine worker: the errors an answer can carry, a future per request, and
the table of requests a client has not had answered yet.

    request = client.ensure(session, frames="1001-1010")   # a Request (a future)
    request.add_done_callback(on_done)                      # runs on the reader thread
    final = request.wait(60)                                # raises EngineError on `error`

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import collections
import itertools
import sys
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional

Event = Dict[str, Any]
Listener = Callable[[Event], None]


class EngineError(Exception):
    """An `error` answer from the engine: `code` (exit-code family), one-line `message`, and
    the `traceback` text for internal errors."""

    def __init__(self, message: str, code: int = 1, traceback: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.traceback = traceback


class EngineUnavailable(EngineError):
    """The engine cannot be started, speaks another protocol, or died too often."""


def error_from(event: Mapping[str, Any]) -> EngineError:
    """The exception an `error` event stands for."""
    kind = EngineUnavailable if event.get("unavailable") else EngineError
    return kind(str(event.get("message") or "engine error"), int(event.get("code") or 1),
                str(event.get("traceback") or ""))


def error_text(error: BaseException) -> str:
    """The one-line reason of an engine error (or of any exception)."""
    return str(getattr(error, "message", "") or error) or type(error).__name__


def call_safely(fn: Listener, event: Event) -> None:
    """A listener's bug must not stop the reader thread."""
    try:
        fn(event)
    except Exception as exc:  # reported, never raised into the reader thread
        print(f"vrmbg client: listener {fn!r} failed on {event.get('event')}: {exc!r}",
              file=sys.stderr)


class Request:
    """A future for one request: its final event, and the progress events seen so far."""

    def __init__(self, request_id: str, op: str, message: Dict[str, Any]) -> None:
        self.id = request_id
        self.op = op
        self.message = message
        self.events: List[Event] = []  # progress and frame events, in order
        self._final: Optional[Event] = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: List[Listener] = []

    @classmethod
    def answered(cls, op: str, final: Event) -> "Request":
        """A request that has its answer already (e.g. a session that is open)."""
        request = cls(str(final.get("id") or ""), op, {})
        request.resolve(final)
        return request

    def wait(self, timeout: Optional[float] = None) -> Event:
        """The final event; raises EngineError for an `error` answer and TimeoutError when
        none came within `timeout` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no answer to {self.op} request {self.id} within {timeout:g} s")
        final = self._final or {}
        if final.get("event") == "error":
            raise error_from(final)
        return final

    def done(self) -> bool:
        """True once the final event has arrived."""
        return self._done.is_set()

    def done_within(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the final event; True once it has arrived."""
        return self._done.wait(timeout)

    @property
    def final(self) -> Optional[Event]:
        """The final event (None while the request runs)."""
        return self._final

    def add_done_callback(self, fn: Listener) -> None:
        """Call `fn(final_event)` when the request ends (at once when it has ended)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        fn(self._final or {})

    def resolve(self, event: Event) -> None:
        """Give the request its final event (once; later ones are ignored)."""
        with self._lock:
            if self._done.is_set():
                return
            self._final = event
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            call_safely(fn, event)


class RequestTable:
    """A client's requests not answered yet, and what it must redo after a worker crash.

    Not locked itself: the client holds its own lock around every call.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._ids = itertools.count(1)
        self.pending: "collections.OrderedDict[str, Request]" = collections.OrderedDict()
        self.internal: Dict[str, Request] = {}  # hello and re-opens of a (re)start
        self.sent: set = set()  # ids sent to the current worker
        self.resent: set = set()  # ids re-sent after a crash and not answered yet
        self.sessions: "collections.OrderedDict[str, Dict[str, Any]]" = \
            collections.OrderedDict()  # open sessions: the fields that opened them

    def new_id(self, kind: str = "") -> str:
        """A request (or session) id unique in this host process."""
        return f"{self.prefix}{kind}{next(self._ids)}"

    def add(self, request: Request, internal: bool = False) -> None:
        """Track a request until its final event."""
        (self.internal if internal else self.pending)[request.id] = request

    def drop(self, request_id: str) -> None:
        """Forget a request that could not be sent."""
        self.pending.pop(request_id, None)

    def find(self, request_id: Any) -> Optional[Request]:
        """The request an event answers, or None."""
        if not isinstance(request_id, str):
            return None
        return self.pending.get(request_id) or self.internal.get(request_id)

    def unsent(self) -> List[Request]:
        """Pending requests the current worker has not been sent, in order."""
        return [r for r in self.pending.values() if r.id not in self.sent]

    def is_unsent(self, request_id: str) -> bool:
        """True for a pending request the current worker has not been sent."""
        return request_id in self.pending and request_id not in self.sent

    def new_worker(self) -> None:
        """A worker was started: nothing is sent to it yet."""
        self.sent = set()

    def mark_resent(self) -> None:
        """After a crash: every pending request counts as re-sent until it is answered."""
        self.resent = set(self.pending)

    def finish(self, request: Request, event: Event) -> bool:
        """Forget an answered request and note an opened session; True when it was the last
        of the requests re-sent after a crash (the worker has recovered)."""
        self.pending.pop(request.id, None)
        self.internal.pop(request.id, None)
        self.sent.discard(request.id)
        if request.op == "open" and event.get("event") == "opened":
            fields = {k: v for k, v in request.message.items() if k not in ("id", "op")}
            fields["session"] = event.get("session") or fields.get("session")
            self.sessions[str(fields["session"])] = fields
        if request.id in self.resent:
            self.resent.discard(request.id)
            return not self.resent
        return False

    def to_reopen(self) -> List[Dict[str, Any]]:
        """The open fields of every session a new worker must open (not those whose open is
        still pending: it is re-sent anyway)."""
        opening = {r.message.get("session") for r in self.pending.values() if r.op == "open"}
        return [dict(f) for s, f in self.sessions.items() if s not in opening]

    def has_work(self) -> bool:
        """True while requests wait or sessions are open (a dead worker is worth a restart)."""
        return bool(self.pending) or bool(self.sessions)

    def take_all(self) -> List[Request]:
        """Every unanswered request, leaving the table without any."""
        waiting = list(self.pending.values()) + list(self.internal.values())
        self.pending.clear()
        self.internal.clear()
        self.sent = set()
        return waiting


def fail_all(requests: List[Request], message: str) -> None:
    """End each request with an `unavailable` error saying `message`."""
    for request in requests:
        request.resolve({"id": request.id, "event": "error", "code": 1, "message": message,
                         "unavailable": True})

