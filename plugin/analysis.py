"""Analyse: one computation of a range of frames of a matte, with progress and cancel.

    analysis = session.analyse("1001-1100")    # starts at once (opens the session first)
    analysis.wait(0.2)                          # True once it has ended
    analysis.cancel()                           # after the frame in flight; finished ones stay
    analysis.fraction, analysis.summary()       # for a progress bar and a status line

Driven by the engine's answers, never polled: a host waits on it from a thread of its own
(Nuke, beside its ProgressTask) or looks at `finished` and `fraction` from a timer (Blender's
modal operator). When it ends, the session's status says how it went.
Standard library only, Python 3.9+.
"""

from __future__ import annotations

import threading
from typing import Any, Optional, Protocol

from .frame_ranges import parse_frame_ranges
from .requests import EngineError, Event, Request, error_text
from .status import Status


class Session(Protocol):
    """What an analysis needs of its matte's session (`host_session.HostSession`)."""

    lock: Any
    status: Status
    engine: Any  # the client the session is open in

    def open_async(self) -> Request: ...

    def analysis_ended(self, analysis: "Analysis") -> None: ...

    def status_line(self) -> str: ...


class Analysis:
    """One computation of a range: open, ensure, progress, cancel."""

    def __init__(self, session: Session, frames: str = "") -> None:
        self.session = session
        self.frames = frames
        self.total = len(parse_frame_ranges(frames)) if frames else 0
        self.cancelled = False
        self.error = ""
        self.result: Optional[Event] = None
        self._ensure: Optional[Request] = None
        self._session = ""
        self._ended = threading.Event()
        with session.lock:
            session.status.done = session.status.todo = 0
        session.open_async().add_done_callback(self._opened)

    def _opened(self, answer: Event) -> None:
        if answer.get("event") == "error":
            self._end(error=str(answer.get("message") or "the engine failed"))
            return
        if self.cancelled:
            self._end(result={"cancelled": True})
            return
        frames = self.frames or f"{answer['first']}-{answer['last']}"
        self.total = self.total or len(parse_frame_ranges(frames))
        self._session = str(answer.get("session", ""))
        try:
            self._ensure = self.session.engine.ensure(self._session, frames=frames)
        except EngineError as error:
            self._end(error=error_text(error))
            return
        if self.cancelled:  # cancelled while the request was being sent
            self.session.engine.cancel(self._session)
        self._ensure.add_done_callback(self._answered)

    def _answered(self, answer: Event) -> None:
        if answer.get("event") == "error":
            self._end(error=str(answer.get("message") or "the engine failed"))
        else:
            self._end(result=answer)

    def _end(self, result: Optional[Event] = None, error: str = "") -> None:
        self.result, self.error = result, error
        self.session.analysis_ended(self)
        self._ended.set()

    @property
    def finished(self) -> bool:
        """True once the run has ended (done, cancelled or failed)."""
        return self._ended.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait up to `timeout` seconds (None: for ever) for the end; True once ended."""
        return self._ended.wait(timeout)

    def cancel(self) -> None:
        """Stop after the frame being computed (finished frames stay cached)."""
        self.cancelled = True
        if self._ensure is not None and not self.finished:
            self.session.engine.cancel(self._session)

    @property
    def fraction(self) -> float:
        """How much of the range is done, 0..1."""
        if self.result is not None and not self.result.get("cancelled"):
            return 1.0
        with self.session.lock:
            done, todo = self.session.status.done, self.session.status.todo
        return min(float(done) / float(todo or self.total or 1), 1.0)

    def summary(self) -> str:
        """One line: the outcome of the run (or the status while it runs)."""
        if self.error:
            return "Error: " + self.error
        if self.result is None:
            return self.session.status_line()
        if self.result.get("cancelled"):
            return "Stopped: %d/%d frames done (finished frames are kept)" % (
                round(self.fraction * self.total), self.total)
        return "Analysed %d frames (%s computed, %s from cache)" % (
            self.total, self.result.get("computed", 0), self.result.get("from_cache", 0))
