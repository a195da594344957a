"""A stand-in for the engine client (plugin/client.py's documented API), for the hosts' unit
tests and the host session's: it records what is asked, answers at once or when told, and
raises the real client's EngineError. End-to-end tests use the real client and worker instead.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional


class DoubleRequest:
    """A request future: resolved by the double (at once, or by `finish`); `wait` raises the
    error class for an `error` answer, as the real client's requests do."""

    def __init__(self, op: str, fields: Dict[str, Any], error_class: type = RuntimeError) -> None:
        self.op, self.fields, self.error_class = op, fields, error_class
        self._final: Optional[Dict[str, Any]] = None
        self._done = threading.Event()
        self._callbacks: List[Callable[[Dict[str, Any]], None]] = []

    def finish(self, final: Dict[str, Any]) -> None:
        self._final = final
        self._done.set()
        for fn in self._callbacks:
            fn(final)

    def wait(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        if not self._done.wait(timeout):
            raise TimeoutError(f"no answer to {self.op} within {timeout} s")
        final = dict(self._final or {})
        if final.get("event") == "error":
            raise self.error_class(final.get("message", ""), final.get("code", 1))
        return final

    def done(self) -> bool:
        return self._done.is_set()

    def add_done_callback(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        if self._done.is_set():
            fn(dict(self._final or {}))
        else:
            self._callbacks.append(fn)


class ClientDouble:
    """Records calls; `hold=True` keeps ensures running until `finish_ensures()` or a cancel."""

    def __init__(self, first: int, last: int, error_class: type, *, hold: bool = False,
                 cached: str = "") -> None:
        self.first, self.last, self.error_class, self.hold = first, last, error_class, hold
        self.cached = cached
        self.calls: List[tuple] = []
        self.listeners: List[Callable[[Dict[str, Any]], None]] = []
        self.pending: List[DoubleRequest] = []
        self.fail: str = ""  # when set, open/ensure_frame raise EngineError(fail)
        self.lock = threading.Lock()
        self.computed: Dict[str, set] = {}  # session -> frames its ensures finished
        self.frame_gate: Optional[threading.Event] = None  # set: ensure_frame waits on it

    def _record(self, *call: Any) -> None:
        with self.lock:
            self.calls.append(call)

    def ops(self, name: str) -> List[tuple]:
        with self.lock:
            return [c for c in self.calls if c[0] == name]

    def emit(self, event: Dict[str, Any]) -> None:
        for fn in list(self.listeners):
            fn(event)

    def add_listener(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        self.listeners.remove(fn)

    def open_request(self, input: str, settings: Dict[str, Any], *, session: str = "",
                     preview: bool = False) -> DoubleRequest:
        self._record("open", input, dict(settings), session)
        request = DoubleRequest("open", {"session": session}, self.error_class)
        if self.fail:
            request.finish({"event": "error", "message": self.fail, "code": 3})
        else:
            request.finish({"event": "opened", "session": session, "first": self.first,
                            "last": self.last, "frames": f"{self.first}-{self.last}",
                            "cached": self.cached, "cached_count": 0,
                            "matte_pattern": f"/cache/{session}/matte.####.exr",
                            "total": self.last - self.first + 1, "device": "cpu",
                            "precision": "bf16"})
        return request

    def open(self, input: str, settings: Dict[str, Any], *, session: str = "",
             preview: bool = False, timeout: Optional[float] = None) -> Dict[str, Any]:
        return self.open_request(input, settings, session=session).wait(timeout)

    def request(self, op: str, **fields: Any) -> DoubleRequest:
        """The generic form: `cache_info` is answered; other ops are recorded and done."""
        request = DoubleRequest(op, fields, self.error_class)
        request.finish(self.cache_info(fields["session"]) if op == "cache_info"
                       else (self._record(op, fields) or {"event": "done"}))
        return request

    def ensure(self, session: str, frame: Optional[int] = None, frames: str = "", *,
               supersede: bool = False) -> DoubleRequest:
        self._record("ensure", session, frame, frames, supersede)
        request = DoubleRequest("ensure", {"session": session, "frame": frame, "frames": frames},
                                self.error_class)
        if self.hold:
            with self.lock:
                self.pending.append(request)
        else:
            self.finish(request)
        return request

    def finish(self, request: DoubleRequest, cancelled: bool = False) -> None:
        session = request.fields["session"]
        wanted = ([request.fields["frame"]] if request.fields["frame"] is not None
                  else _frames(request.fields["frames"]))
        if not cancelled:
            with self.lock:
                self.computed.setdefault(session, set()).update(wanted)
            for frame in wanted:
                self.emit({"event": "frame", "session": session, "frame": frame,
                           "path": f"/cache/{session}/matte.{frame:04d}.exr", "exact": True,
                           "tier": "final"})
        request.finish({"event": "done", "cancelled": cancelled, "superseded": False})

    def finish_ensures(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
        for request in pending:
            self.finish(request)

    def ensure_frame(self, session: str, frame: int, *, timeout: Optional[float] = None) -> str:
        self._record("ensure_frame", session, frame)
        if self.frame_gate is not None and not self.frame_gate.wait(timeout or 10.0):
            raise self.error_class("timed out", 3)
        if self.fail:
            raise self.error_class(self.fail, 3)
        with self.lock:
            self.computed.setdefault(session, set()).add(frame)
        return f"/cache/{session}/matte.{frame:04d}.exr"

    def cache_info(self, session: str, *, timeout: float = 30.0) -> Dict[str, Any]:
        self._record("cache_info", session)
        with self.lock:
            done = sorted(self.computed.get(session, set()))
        return {"event": "cache", "cached": ",".join(str(f) for f in done),
                "cached_count": len(done), "matte_pattern": f"/cache/{session}/matte.####.exr"}

    def cancel(self, session: str = "") -> DoubleRequest:
        self._record("cancel", session)
        if self.frame_gate is not None:  # a blocking ensure_frame ends, cancelled
            self.fail = self.fail or "cancelled"
            self.frame_gate.set()
        with self.lock:
            pending, self.pending = self.pending, []
        for request in pending:
            self.finish(request, cancelled=True)
        answer = DoubleRequest("cancel", {}, self.error_class)
        answer.finish({"event": "done", "cancelled": len(pending)})
        return answer

    def clear(self, session: str, *, timeout: float = 60.0) -> Dict[str, Any]:
        self._record("clear", session)
        return {"event": "done", "removed": True}

    def release(self, *, timeout: float = 30.0) -> Dict[str, Any]:
        self._record("release")
        return {"event": "done", "released": 1}

    def close(self, session: str) -> None:
        self._record("close", session)


def _frames(text: str) -> List[int]:
    out: List[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out
