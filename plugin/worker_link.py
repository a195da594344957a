"""The client's link to its worker: start it with a handshake, deliver what it says, and
start it again when it dies.

States: stopped -> starting -> ready, and ready -> restarting -> ready when the worker dies
with work to do. A restart re-opens the sessions under the same ids and re-sends every
unanswered request; after `max_restarts` deaths in a row (the re-sent requests never all
finished) the link gives up and ends what waits with EngineUnavailable. Listeners hear
`worker_died` (with the exit code and last log lines) and `worker_restarted`.
Standard library only, Python 3.9+.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Mapping, Optional, Sequence

from .platform_check import unsupported_platform
from .protocol import PROGRESS_EVENTS, PROTOCOL_VERSION
from .requests import EngineUnavailable, Event, Request, RequestTable, fail_all
from .worker_process import WorkerProcess, find_engine_python


class WorkerLink:
    """One worker at a time for a client, and the requests sent to it."""

    def __init__(self, python: str, worker_args: Sequence[str],
                 env: Optional[Mapping[str, str]], start_timeout: float, max_restarts: int,
                 table: RequestTable, emit: Callable[[Event], None],
                 allow_remote_code: bool = False) -> None:
        self.python = python
        self.allow_remote_code = bool(allow_remote_code)  # taken at each (re)start
        self.worker_args = [str(a) for a in worker_args]
        self.env = env
        self.start_timeout = float(start_timeout)
        self.max_restarts = int(max_restarts)
        self.restarts = 0  # restarts after a crash, in total
        self.table = table
        self.lock = threading.RLock()  # guards the table and the fields below
        self._emit = emit
        self._start_lock = threading.Lock()
        self.worker: Optional[WorkerProcess] = None  # the running (or starting) worker
        self.last: Optional[WorkerProcess] = None  # the latest started, for its log
        self._ready: Event = {}
        self._state = "stopped"  # stopped | starting | ready | restarting
        self._closing = False
        self._in_a_row = 0  # deaths since the requests re-sent after a restart all finished
        self._exits_handled: set = set()  # workers (generations) whose exit was dealt with

    # ------------------------------------------------------------------ what the client asks

    def start(self) -> Event:
        """Start the worker if it is not running; returns its `ready` event."""
        with self._start_lock:
            with self.lock:
                if self._state == "ready" and self.alive():
                    return dict(self._ready)
                self._closing = False
                self._state = "starting"
            try:
                ready = self._spawn()
            except BaseException:
                with self.lock:
                    self._state = "stopped"
                raise
            with self.lock:
                self._in_a_row = 0
                self._go_ready(resend=False)
            self._check_still_alive()
            return dict(ready)

    def stop(self, timeout: float) -> None:
        """Stop the worker (asked, terminated, killed); what waits ends as shut down."""
        with self._start_lock:
            with self.lock:
                self._closing = True
                worker = self.worker
            if worker is None:
                return
            worker.stop({"id": f"{self.table.prefix}shutdown", "op": "shutdown"}, timeout)
            self._finish_exit(worker)

    def submit(self, req: Request) -> None:
        """Send a request (starting the worker if needed; queued while it restarts)."""
        with self.lock:
            self.table.add(req)
        try:
            if not self.ready() and not self._restarting():
                self.start()
        except BaseException:
            with self.lock:
                self.table.drop(req.id)
            raise
        with self.lock:
            if self._state == "ready" and self.table.is_unsent(req.id):
                self._send(req)

    def ready(self) -> bool:
        """True while a worker is up and has answered `hello`."""
        with self.lock:
            return self._state == "ready" and self.alive()

    def alive(self) -> bool:
        """True while the current worker's process runs."""
        return self.worker is not None and self.worker.alive()

    def log_tail(self, lines: int) -> List[str]:
        """The last log lines of the latest worker."""
        last = self.last
        return last.log_tail(lines) if last is not None else []

    # ------------------------------------------------------------------ starting

    def _restarting(self) -> bool:
        with self.lock:
            return self._state == "restarting"

    def _spawn(self) -> Event:
        """Start a worker and shake hands; returns `ready` (EngineUnavailable when it cannot
        start, exits early, is silent too long or speaks another protocol)."""
        unsupported = unsupported_platform()
        if unsupported:
            raise EngineUnavailable(unsupported)
        python = find_engine_python(self.python)
        with self.lock:
            generation = (self.last.generation if self.last is not None else 0) + 1
        worker = WorkerProcess.spawn(python, self.worker_args, self.env, generation,
                                     self.allow_remote_code)
        with self.lock:
            self.worker = self.last = worker
            self.table.new_worker()
        worker.read(self._dispatch, self._on_exit)
        hello = self._internal_request("hello", protocol=PROTOCOL_VERSION)
        ready = self._wait_internal(hello, worker, "start")
        if ready.get("protocol") != PROTOCOL_VERSION:
            worker.kill()
            raise EngineUnavailable(
                f"the engine at {python} speaks worker protocol {ready.get('protocol')} and "
                f"this plugin speaks {PROTOCOL_VERSION}: re-run `vrmbg install` with that "
                "engine so the plugin matches it")
        with self.lock:
            self._ready = ready
        return ready

    def _internal_request(self, op: str, **fields: Any) -> Request:
        """A request of the link's own (hello, re-opens), sent at once."""
        request_id = self.table.new_id(f"{op}-")
        req = Request(request_id, op, dict(fields, id=request_id, op=op))
        with self.lock:
            self.table.add(req, internal=True)
        self._write(req.message)
        return req

    def _wait_internal(self, req: Request, worker: WorkerProcess, phase: str) -> Event:
        """Wait for an internal request, watching the process; EngineUnavailable on failure."""
        deadline = time.monotonic() + self.start_timeout
        while not req.done():
            if not worker.alive():
                time.sleep(0.1)  # let the log reader catch the last lines
                died = EngineUnavailable(
                    f"the engine worker exited with code {worker.returncode} during {phase}: "
                    f"{' | '.join(worker.log_tail(5)) or 'no log'}")
                died.died = True  # type: ignore[attr-defined]  # a crash, not a refusal
                raise died
            if time.monotonic() > deadline:
                worker.kill()
                raise EngineUnavailable(f"the engine worker did not answer {req.op} within "
                                        f"{self.start_timeout:g} s ({phase}); log: "
                                        f"{' | '.join(worker.log_tail(5)) or 'empty'}")
            req.done_within(0.05)
        final = req.final or {}
        if final.get("event") == "error" and req.op == "hello":
            raise EngineUnavailable(f"the engine refused hello: {final.get('message')}")
        return final

    def _write(self, message: Mapping[str, Any]) -> bool:
        worker = self.worker
        return worker.write(message) if worker is not None else False

    def _send(self, req: Request) -> None:
        """Send a pending request to the current worker (lock held)."""
        self.table.sent.add(req.id)
        self._write(req.message)

    def _go_ready(self, resend: bool) -> None:
        """Mark the worker ready and send every pending request not yet sent (lock held)."""
        self._state = "ready"
        if resend:
            self.table.mark_resent()
        for req in self.table.unsent():
            self._send(req)

    def _dispatch(self, event: Event) -> None:
        """Route an event to its request, then to the listeners (the event reader's thread)."""
        final = event.get("event") not in PROGRESS_EVENTS
        with self.lock:
            req = self.table.find(event.get("id"))
            if req is not None and final and self.table.finish(req, event):
                self._in_a_row = 0  # every request re-sent after the crash has finished
        if req is not None:
            if final:
                req.resolve(event)
            else:
                req.events.append(event)
        self._emit(event)

    # ------------------------------------------------------------------ crashes

    def _on_exit(self, worker: WorkerProcess) -> None:
        """A worker ended: report it and, unless we are closing, start another."""
        with self.lock:
            if worker is not self.last or worker.generation in self._exits_handled \
                    or self._state in ("starting", "restarting"):
                return  # a (re)start in progress sees the death itself and handles it
            self._exits_handled.add(worker.generation)
            self._state = "stopped" if self._closing else "restarting"
        if self._closing:
            self._finish_exit(worker)
            return
        time.sleep(0.05)  # the log reader's last lines
        tail = worker.log_tail(10)
        message = (f"the engine worker (pid {worker.pid}) exited with code "
                   f"{worker.returncode}" + (f": {tail[-1]}" if tail else ""))
        worker.forget()
        with self.lock:
            work = self.table.has_work()
        if not work:
            self._emit(_died_event(worker.returncode, message, tail, False))
            with self.lock:
                self._state = "stopped"
            return
        self._restart(_died_event(worker.returncode, message, tail, True))

    def _restart(self, died: Event) -> None:
        """Start a new worker, re-open the sessions, re-send the unanswered requests; give
        up after `max_restarts` deaths in a row."""
        while True:
            with self.lock:
                give_up = self._in_a_row >= self.max_restarts
            if give_up:
                died["restarting"] = False
                self._emit(died)
                self._fail_all(f"{died['message']} (it died {self._in_a_row + 1} times in a "
                               "row; not restarted)")
                return
            self._emit(died)
            with self.lock:
                self._in_a_row += 1
                self.restarts += 1
            try:
                ready = self._spawn()
                self._reopen_sessions()
                break
            except EngineUnavailable as exc:
                worker = self.worker
                if not getattr(exc, "died", False) or worker is None:  # refused: no retry
                    self._fail_all(exc.message)
                    return
                worker.forget()
                died = _died_event(worker.returncode, exc.message, worker.log_tail(10), True)
        with self.lock:
            self._go_ready(resend=True)
            sessions = list(self.table.sessions)
        self._emit({"id": None, "event": "worker_restarted", "pid": ready.get("pid"),
                    "sessions": sessions})
        self._check_still_alive()

    def _check_still_alive(self) -> None:
        """A worker that died while a (re)start was still under way was not handled by its
        reader thread: handle it now."""
        worker = self.worker
        if worker is not None and not worker.alive():
            self._on_exit(worker)

    def _reopen_sessions(self) -> None:
        """Open every session the old worker had, under the same ids (and settings)."""
        with self.lock:
            sessions = self.table.to_reopen()
            worker = self.worker
        for fields in sessions:
            req = self._internal_request("open", **fields)
            assert worker is not None
            self._wait_internal(req, worker, "re-opening sessions")

    def _fail_all(self, message: str) -> None:
        """End every unanswered request with EngineUnavailable."""
        with self.lock:
            self._state = "stopped"
            waiting = self.table.take_all()
        fail_all(waiting, message)

    def _finish_exit(self, worker: WorkerProcess) -> None:
        """After a deliberate stop: forget the record, end what waits."""
        worker.forget()
        self._fail_all("the engine worker was shut down")
        with self.lock:
            if self.worker is worker:
                self.worker = None


def _died_event(code: Any, message: str, tail: List[str], restarting: bool) -> Event:
    return {"id": None, "event": "worker_died", "code": code, "message": message,
            "log": tail, "restarting": restarting}
