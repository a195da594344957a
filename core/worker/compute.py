"""A queue of jobs run one at a time on its own thread, with supersede and cancel.

The worker keeps three: the compute queue (ensures and cache clears: one model step at a time
across the worker), the open queue (plate checks and model loads, so a second shot can be
opened while the first computes) and the housekeeping queue (cache prunes). The request loop
never waits on any of them, which is how `status` is answered while a frame computes.

A job returns its final event as (name, fields); the queue sends it through `answer` once the
job no longer counts as running, so a `status` sent after an answer never sees it busy. A job
ended before it starts (superseded, cancelled, or the worker stopping) is handed to
`on_dropped`, which answers it.
"""

from __future__ import annotations

import collections
import sys
import threading
import traceback
from typing import Any, Callable

DROP_CANCELLED = "cancelled"
DROP_SUPERSEDED = "superseded"


class Job:
    """One queued request: what to run, for which session, and its stop flag."""

    def __init__(self, request_id: Any, op: str, session_id: str,
                 run: Callable[["Job"], Any], *, playhead: bool = False,
                 frames: str = "") -> None:
        self.request_id = request_id
        self.op = op
        self.session_id = session_id
        self.run = run
        self.playhead = playhead  # an ensure marked `supersede` (follows a playhead)
        self.frames = frames  # an ensure's frames, as range text
        self.stop = threading.Event()  # checked between frames
        self.superseded = False
        self.frame: int | None = None  # the frame being computed, for status

    def describe(self) -> dict[str, Any]:
        """What status reports about the running job."""
        return {"session": self.session_id, "frame": self.frame, "request": self.request_id,
                "op": self.op}


class JobQueue:
    """Runs submitted jobs in order on one thread."""

    def __init__(self, name: str, on_dropped: Callable[[Job, str], None],
                 answer: Callable[[Job, Any], None]) -> None:
        self._name = name
        self._on_dropped = on_dropped
        self._answer = answer
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._running: Job | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"vrmbg-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ requests

    def submit(self, job: Job) -> None:
        """Queue a job behind the others (dropped at once when the queue is stopping)."""
        with self._cond:
            if not self._stopping:
                self._queue.append(job)
                self._cond.notify()
                return
        self._on_dropped(job, DROP_CANCELLED)

    def supersede(self, session_id: str) -> int:
        """End the queued ensures of a session, and stop its running playhead ensure after
        the frame being computed; returns how many were ended."""
        ended = self._take(lambda job: job.op == "ensure" and job.session_id == session_id)
        for job in ended:
            job.superseded = True
            self._on_dropped(job, DROP_SUPERSEDED)
        with self._cond:
            running = self._running
            if (running is not None and running.playhead and running.op == "ensure"
                    and running.session_id == session_id and not running.stop.is_set()):
                running.superseded = True
                running.stop.set()
                return len(ended) + 1
        return len(ended)

    def cancel(self, session_id: str = "", ops: tuple[str, ...] = ("ensure",)) -> int:
        """Stop the running job and end the queued ones of these ops for a session (every
        session when empty); returns how many were stopped."""
        def matches(job: Job) -> bool:
            return job.op in ops and (not session_id or job.session_id == session_id)

        ended = self._take(matches)
        for job in ended:
            self._on_dropped(job, DROP_CANCELLED)
        with self._cond:
            running = self._running
            if running is not None and matches(running) and not running.stop.is_set():
                running.stop.set()
                return len(ended) + 1
        return len(ended)

    def snapshot(self) -> tuple[dict[str, Any] | None, int]:
        """(the running job's description or None, how many jobs wait)."""
        with self._cond:
            running = self._running.describe() if self._running is not None else None
            return running, len(self._queue)

    def busy_with(self, session_id: str) -> bool:
        """True when a job of this session runs or waits."""
        with self._cond:
            jobs = list(self._queue) + ([self._running] if self._running else [])
            return any(job.session_id == session_id for job in jobs)

    def stop(self, timeout: float | None = None) -> None:
        """Drop every queued job, stop the running one between frames, wait for the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for job in self._take(lambda job: True):
            self._on_dropped(job, DROP_CANCELLED)
        with self._cond:
            if self._running is not None:
                self._running.stop.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ thread

    def _take(self, matches: Callable[[Job], bool]) -> list[Job]:
        """Remove and return the queued jobs that match, in queue order."""
        with self._cond:
            taken = [job for job in self._queue if matches(job)]
            if taken:
                self._queue = collections.deque(j for j in self._queue if not matches(j))
            return taken

    def _loop(self) -> None:
        """Run jobs until stopped; a job's own errors are its to report, bugs are logged."""
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._running = self._queue.popleft()
            result: Any = None
            try:
                result = job.run(job)
            except Exception:  # a bug in a job: keep the thread alive, log the traceback
                print(f"vrmbg worker: {self._name} job {job.request_id!r} failed:\n"
                      f"{traceback.format_exc()}", file=sys.stderr, flush=True)
            finally:
                with self._cond:
                    self._running = None
            try:
                self._answer(job, result)
            except Exception:  # the queue must outlive a bad answer, or later jobs hang
                print(f"vrmbg worker: {self._name} answer to {job.request_id!r} failed:\n"
                      f"{traceback.format_exc()}", file=sys.stderr, flush=True)
