"""The host side of the engine worker: one small API over a worker that is started on
demand and restarted when it dies.

    client = shared_client()                       # one worker per host process
    opened = client.open("/plates/sh010.####.exr", {"model": "demo"})
    request = client.ensure(opened["session"], frames="1001-1010")
    client.add_listener(on_event)                  # progress and frame events (reader thread)
    path = client.ensure_frame(opened["session"], 1005, timeout=600)   # headless renders

Finding and starting a worker is `worker_process`; starting it again when it dies is
`worker_link`; futures and the table of unanswered requests are `requests`. Events arrive
on a reader thread: hosts move UI work to their main thread. When the worker dies,
listeners get a `worker_died` event with its exit code and last log lines; the client
starts it again (at most `max_restarts` times in a row), re-opens the sessions under the
same ids and re-sends the unanswered requests. Finished frames are in the cache, so nothing
finished is computed again.

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import engine_record
from .requests import (EngineError, EngineUnavailable, Event, Listener, Request, RequestTable,
                       call_safely)
from .worker_link import WorkerLink
from .worker_process import find_engine_python

__all__ = ["EngineClient", "EngineError", "EngineUnavailable", "Request", "engine_record",
           "find_engine_python", "shared_client"]


class EngineClient:
    """One engine worker process, started on demand and restarted when it dies."""

    def __init__(self, python: str = "", *, worker_args: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None, start_timeout: float = 120.0,
                 max_restarts: int = 3, on_event: Optional[Listener] = None,
                 allow_remote_code: bool = False) -> None:
        """`allow_remote_code`: the host's own preference (the person running it, never a
        scene's setting) allows downloaded model code; see `allow_remote_code` below."""
        self._listeners: List[Listener] = [on_event] if on_event else []
        self._listeners_lock = threading.Lock()
        self._table = RequestTable(f"h{os.getpid()}-")
        self._link = WorkerLink(python, worker_args, env, start_timeout, max_restarts,
                                self._table, self._emit, allow_remote_code)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Event:
        """Start the worker if it is not running; returns its `ready` event."""
        return self._link.start()

    @property
    def running(self) -> bool:
        """True while a worker is up and has answered `hello`."""
        return self._link.ready()

    @property
    def pid(self) -> Optional[int]:
        """The worker's process id (None when none runs)."""
        worker = self._link.worker
        return worker.pid if worker is not None and worker.alive() else None

    @property
    def restarts(self) -> int:
        """How many times the worker was started again after a crash."""
        return self._link.restarts

    @property
    def allow_remote_code(self) -> bool:
        """Whether the worker may run a model's downloaded code when a matte asks for it:
        only from the host's own preferences (set before the worker starts; a running worker
        keeps what it started with until it is shut down and started again)."""
        return self._link.allow_remote_code

    @allow_remote_code.setter
    def allow_remote_code(self, allowed: bool) -> None:
        self._link.allow_remote_code = bool(allowed)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop, then terminate it, then kill it; unanswered requests end
        with EngineUnavailable."""
        self._link.stop(timeout)

    def log_tail(self, lines: int = 20) -> List[str]:
        """The last lines the worker wrote to its log (stderr)."""
        return self._link.log_tail(lines)

    # ------------------------------------------------------------------ listeners

    def add_listener(self, fn: Listener) -> None:
        """Call `fn(event)` for every event, on the reader thread."""
        with self._listeners_lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling `fn`."""
        with self._listeners_lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _emit(self, event: Event) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for fn in listeners:
            call_safely(fn, event)

    # ------------------------------------------------------------------ requests

    def request(self, op: str, **fields: Any) -> Request:
        """Send one request (starting the worker if needed); returns its future."""
        request_id = self._table.new_id()
        req = Request(request_id, op, dict(fields, id=request_id, op=op))
        self._link.submit(req)
        return req

    def open_request(self, input: str, settings: Mapping[str, Any], *, session: str = "",
                     preview: bool = False, movie_start: Optional[int] = None) -> Request:
        """Open a shot without waiting (the answer is the `opened` event)."""
        fields: Dict[str, Any] = {"input": str(input), "settings": dict(settings),
                                  "session": session or self._table.new_id("s"),
                                  "preview": bool(preview)}
        if movie_start is not None:
            fields["movie_start"] = int(movie_start)
        return self.request("open", **fields)

    def open(self, input: str, settings: Mapping[str, Any], *, session: str = "",
             preview: bool = False, movie_start: Optional[int] = None,
             timeout: Optional[float] = None) -> Event:
        """Open a shot (blocking; loads the model); returns the `opened` event."""
        return self.open_request(input, settings, session=session, preview=preview,
                                 movie_start=movie_start).wait(timeout)

    def ensure(self, session: str, frame: Optional[int] = None, frames: str = "", *,
               supersede: bool = False) -> Request:
        """Ask for one frame or a range ("1001-1010"); `frame` events tell where each is."""
        fields: Dict[str, Any] = {"session": session}
        if frame is not None:
            fields["frame"] = int(frame)
        else:
            fields["frames"] = str(frames)
        if supersede:
            fields["supersede"] = True
        return self.request("ensure", **fields)

    def ensure_frame(self, session: str, frame: int, *,
                     timeout: Optional[float] = None) -> str:
        """The matte path of an exact frame, waiting for it (headless renders); raises
        EngineError saying what failed."""
        req = self.ensure(session, frame=frame)
        try:
            final = req.wait(timeout)
        except TimeoutError:
            self.cancel(session)
            raise EngineError(f"frame {frame} of session {session} was not ready after "
                              f"{timeout:g} s (cancelled); worker log: "
                              f"{' | '.join(self.log_tail(3)) or 'empty'}") from None
        except EngineError as exc:
            raise type(exc)(f"frame {frame}: {exc.message}", exc.code, exc.traceback) from None
        if final.get("cancelled") or final.get("superseded"):
            how = "cancelled" if final.get("cancelled") else "superseded"
            raise EngineError(f"frame {frame} of session {session} was {how} before it was "
                              "ready", 2)
        found = [e for e in req.events if e.get("event") == "frame" and e.get("frame") == frame]
        if not found:
            raise EngineError(f"frame {frame} of session {session}: the engine answered "
                              "without a matte")
        if not found[-1].get("exact"):
            raise EngineError(f"frame {frame} of session {session}: only a preview matte is "
                              "available; renders need a session opened without preview", 2)
        return str(found[-1]["path"])

    def cancel(self, session: str = "") -> Request:
        """Stop the running and queued ensures (of one session, or all) between frames."""
        return self.request("cancel", **({"session": session} if session else {}))

    def status(self, session: str = "", *, timeout: float = 10.0) -> Event:
        """What the worker is doing (answered while a frame computes)."""
        return self.request("status", **({"session": session} if session else {})) \
            .wait(timeout)

    def cache_info(self, session: str, *, timeout: float = 30.0) -> Event:
        """Where a session's cache is and which frames it holds."""
        return self.request("cache_info", session=session).wait(timeout)

    def clear(self, session: str, *, timeout: float = 60.0) -> Event:
        """Drop a session's chain from the cache."""
        return self.request("clear", session=session).wait(timeout)

    def prune(self, session: str, max_bytes: int = 0, *, scope: str = "shot",
              timeout: float = 300.0) -> Event:
        """Delete least recently used chains of the session's shot (`scope` "shot") or of its
        whole cache ("cache") until they fit in `max_bytes`, as `vrmbg cache prune` does;
        chains open in the worker and chains a process computes are kept. The answer says
        `removed`, `bytes_freed`, `bytes_after`, and the sizes now (`bytes`, `shot_bytes`)."""
        return self.request("prune", session=session, max_bytes=int(max_bytes),
                            scope=scope).wait(timeout)

    def release(self, *, timeout: float = 30.0) -> Event:
        """Free loaded models (GPU memory); they load again on the next ensure."""
        return self.request("release").wait(timeout)

    def close(self, session: str) -> None:
        """Forget a session (its running and queued ensures end as cancelled)."""
        with self._link.lock:
            self._table.sessions.pop(session, None)
        if self._link.ready():
            self.request("close", session=session)


_SHARED: Optional[EngineClient] = None
_SHARED_LOCK = threading.Lock()


def shared_client(**kwargs: Any) -> EngineClient:
    """The host process's one client (made on first call with `kwargs`; later calls return
    the same one); its worker is shut down when the host exits."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = EngineClient(**kwargs)
            atexit.register(_shutdown_shared)
        return _SHARED


def _shutdown_shared() -> None:
    client = _SHARED
    if client is not None:
        client.shutdown(timeout=5.0)
