"""The host side of the engine worker: start it, send requests, hear events, survive crashes.

    client = shared_client()                       # one worker per host process
    opened = client.open("/plates/sh010.####.exr", {"model": "demo"})
    request = client.ensure(opened["session"], frames="1001-1010")
    client.add_listener(on_event)                  # progress and frame events (reader thread)
    path = client.ensure_frame(opened["session"], 1005, timeout=600)   # headless renders

The worker runs in the engine's own Python (found as: the explicit `python` argument, else
$VRMBG_PYTHON, else the installer's `engine.json` beside this file) and is started lazily with
an argument list, never a shell string. Events arrive on a reader thread: hosts move UI work to
their main thread. When the worker dies, listeners get a `worker_died` event with its exit code
and last log lines; the client starts it again (at most `max_restarts` times in a row), re-opens
the sessions under the same ids and re-sends the unanswered requests. Finished frames are in the
cache, so nothing finished is computed again.

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from . import engine_record, worker_registry
from .protocol import PROGRESS_EVENTS, PROTOCOL_VERSION

LOG_LINES_KEPT = 200
# Variables of a host's own Python that would break the engine's Python if inherited.
HOST_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE",
                         "PYTHONNOUSERSITE", "__PYVENV_LAUNCHER__")
KILL_WAIT_SECONDS = 3.0


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


def _error_from(event: Mapping[str, Any]) -> EngineError:
    """The exception an `error` event stands for."""
    kind = EngineUnavailable if event.get("unavailable") else EngineError
    return kind(str(event.get("message") or "engine error"), int(event.get("code") or 1),
                str(event.get("traceback") or ""))


class Request:
    """A future for one request: its final event, and the progress events seen so far."""

    def __init__(self, request_id: str, op: str, message: Dict[str, Any]) -> None:
        self.id = request_id
        self.op = op
        self.message = message
        self.events: List[Dict[str, Any]] = []  # progress and frame events, in order
        self._final: Optional[Dict[str, Any]] = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: List[Callable[[Dict[str, Any]], None]] = []

    def wait(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The final event; raises EngineError for an `error` answer and TimeoutError when
        none came within `timeout` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no answer to {self.op} request {self.id} within {timeout:g} s")
        final = self._final or {}
        if final.get("event") == "error":
            raise _error_from(final)
        return final

    def done(self) -> bool:
        """True once the final event has arrived."""
        return self._done.is_set()

    @property
    def final(self) -> Optional[Dict[str, Any]]:
        """The final event (None while the request runs)."""
        return self._final

    def add_done_callback(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        """Call `fn(final_event)` when the request ends (at once when it has ended)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        fn(self._final or {})

    def _resolve(self, event: Dict[str, Any]) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._final = event
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            _call_safely(fn, event)


def _call_safely(fn: Callable[[Dict[str, Any]], None], event: Dict[str, Any]) -> None:
    """A listener's bug must not stop the reader thread."""
    try:
        fn(event)
    except Exception as exc:  # reported, never raised into the reader thread
        print(f"vrmbg client: listener {fn!r} failed on {event.get('event')}: {exc!r}",
              file=sys.stderr)


def find_engine_python(explicit: str = "") -> str:
    """The engine's Python: explicit > $VRMBG_PYTHON > the installer's record."""
    python = explicit or os.environ.get("VRMBG_PYTHON", "") or \
        str(engine_record.read_record().get("python") or "")
    if not python:
        raise EngineUnavailable(
            "no engine Python is known: set VRMBG_PYTHON to the Python where vrmbg is "
            "installed, or run `vrmbg install nuke` / `vrmbg install blender` with it")
    found = python if os.path.isfile(python) else shutil.which(python)
    if not found:
        raise EngineUnavailable(f"the engine Python {python!r} does not exist (set "
                                "VRMBG_PYTHON, or re-run `vrmbg install` from the engine)")
    return found


def engine_environment(env: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The worker's environment: as given, else ours without the host Python's variables."""
    if env is not None:
        return dict(env)
    clean = {k: v for k, v in os.environ.items() if k not in HOST_PYTHON_VARIABLES}
    clean["PYTHONIOENCODING"] = "utf-8"
    return clean


class EngineClient:
    """One engine worker process, started on demand and restarted when it dies."""

    def __init__(self, python: str = "", *, worker_args: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None, start_timeout: float = 120.0,
                 max_restarts: int = 3,
                 on_event: Optional[Callable[[Dict[str, Any]], None]] = None) -> None:
        self.python = python
        self.worker_args = [str(a) for a in worker_args]
        self.env = env
        self.start_timeout = float(start_timeout)
        self.max_restarts = int(max_restarts)
        self.restarts = 0  # restarts after a crash, in total
        self._listeners: List[Callable[[Dict[str, Any]], None]] = [on_event] if on_event else []
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = f"h{os.getpid()}-"
        self._proc: Optional[subprocess.Popen] = None
        self._generation = 0
        self._ready: Optional[Dict[str, Any]] = None
        self._state = "stopped"  # stopped | starting | ready | restarting
        self._closing = False
        self._pending: "collections.OrderedDict[str, Request]" = collections.OrderedDict()
        self._sent: set = set()  # ids sent to the current worker
        self._internal: Dict[str, Request] = {}  # hello and re-opens of a (re)start
        self._sessions: "collections.OrderedDict[str, Dict[str, Any]]" = collections.OrderedDict()
        self._in_a_row = 0  # deaths since the requests re-sent after a restart all finished
        self._resent: set = set()
        self._log: "collections.deque[str]" = collections.deque(maxlen=LOG_LINES_KEPT)
        self._record = ""
        self._exits_handled: set = set()  # generations whose exit was dealt with

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Dict[str, Any]:
        """Start the worker if it is not running; returns its `ready` event."""
        with self._start_lock:
            with self._lock:
                if self._state == "ready" and self._alive():
                    return dict(self._ready or {})
                self._closing = False
                self._state = "starting"
            try:
                ready = self._spawn()
            except BaseException:
                with self._lock:
                    self._state = "stopped"
                raise
            with self._lock:
                self._in_a_row = 0
                self._go_ready(resend=False)
            self._check_still_alive()
            return dict(ready)

    @property
    def running(self) -> bool:
        """True while a worker is up and has answered `hello`."""
        with self._lock:
            return self._state == "ready" and self._alive()

    @property
    def pid(self) -> Optional[int]:
        """The worker's process id (None when none runs)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop, then terminate it, then kill it; unanswered requests end
        with EngineUnavailable."""
        with self._start_lock:
            with self._lock:
                self._closing = True
                proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                self._write({"id": f"{self._prefix}shutdown", "op": "shutdown"})
                self._close_stdin(proc)
                if not self._wait_exit(proc, timeout):
                    proc.terminate()
                    if not self._wait_exit(proc, KILL_WAIT_SECONDS):
                        proc.kill()
                        self._wait_exit(proc, KILL_WAIT_SECONDS)
            self._finish_exit(proc)

    def log_tail(self, lines: int = 20) -> List[str]:
        """The last lines the worker wrote to its log (stderr)."""
        with self._lock:
            return list(self._log)[-lines:] if lines > 0 else []

    # ------------------------------------------------------------------ listeners

    def add_listener(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        """Call `fn(event)` for every event, on the reader thread."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[Dict[str, Any]], None]) -> None:
        """Stop calling `fn`."""
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # ------------------------------------------------------------------ requests

    def request(self, op: str, **fields: Any) -> Request:
        """Send one request (starting the worker if needed); returns its future."""
        request_id = f"{self._prefix}{next(self._ids)}"
        message = dict(fields, id=request_id, op=op)
        req = Request(request_id, op, message)
        with self._lock:
            self._pending[request_id] = req
        try:
            if not self.running and not self._restarting():
                self.start()
        except BaseException:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        with self._lock:
            if self._state == "ready" and request_id in self._pending \
                    and request_id not in self._sent:
                self._send(req)
        return req

    def open(self, input: str, settings: Mapping[str, Any], *, session: str = "",
             preview: bool = False, movie_start: Optional[int] = None,
             timeout: Optional[float] = None) -> Dict[str, Any]:
        """Open a shot (blocking; loads the model); returns the `opened` event."""
        fields: Dict[str, Any] = {"input": str(input), "settings": dict(settings),
                                  "session": session or f"{self._prefix}s{next(self._ids)}",
                                  "preview": bool(preview)}
        if movie_start is not None:
            fields["movie_start"] = int(movie_start)
        return self.request("open", **fields).wait(timeout)

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

    def status(self, session: str = "", *, timeout: float = 10.0) -> Dict[str, Any]:
        """What the worker is doing (answered while a frame computes)."""
        return self.request("status", **({"session": session} if session else {})) \
            .wait(timeout)

    def cache_info(self, session: str, *, timeout: float = 30.0) -> Dict[str, Any]:
        """Where a session's cache is and which frames it holds."""
        return self.request("cache_info", session=session).wait(timeout)

    def clear(self, session: str, *, timeout: float = 60.0) -> Dict[str, Any]:
        """Drop a session's chain from the cache."""
        return self.request("clear", session=session).wait(timeout)

    def release(self, *, timeout: float = 30.0) -> Dict[str, Any]:
        """Free loaded models (GPU memory); they load again on the next ensure."""
        return self.request("release").wait(timeout)

    def close(self, session: str) -> None:
        """Forget a session (its running and queued ensures end as cancelled)."""
        with self._lock:
            self._sessions.pop(session, None)
            up = self._state == "ready" and self._alive()
        if up:
            self.request("close", session=session)

    # ------------------------------------------------------------------ process

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _restarting(self) -> bool:
        with self._lock:
            return self._state == "restarting"

    def _spawn(self) -> Dict[str, Any]:
        """Start a worker process and shake hands; returns `ready` (EngineUnavailable when it
        cannot start, exits early, is silent too long or speaks another protocol)."""
        python = find_engine_python(self.python)
        worker_registry.clean_stale_workers()
        args = [python, "-m", "vrmbg.core", "worker", *self.worker_args]
        flags = 0x08000000 if os.name == "nt" else 0  # CREATE_NO_WINDOW: no console pops up
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=engine_environment(self.env),
                                    creationflags=flags)
        except OSError as exc:
            raise EngineUnavailable(f"cannot start the engine with {python}: "
                                    f"{exc.strerror or exc}") from None
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._proc = proc
            self._sent = set()
            self._log.clear()
        try:
            self._record = worker_registry.record_worker(proc.pid)
        except OSError:
            self._record = ""
        for target, name in ((self._read_events, "events"), (self._read_log, "log")):
            threading.Thread(target=target, args=(proc, generation), daemon=True,
                             name=f"vrmbg-client-{name}-{generation}").start()
        hello = self._internal_request("hello", protocol=PROTOCOL_VERSION)
        ready = self._wait_internal(hello, proc, self.start_timeout, "start")
        if ready.get("protocol") != PROTOCOL_VERSION:
            self._kill(proc)
            raise EngineUnavailable(
                f"the engine at {python} speaks worker protocol {ready.get('protocol')} and "
                f"this plugin speaks {PROTOCOL_VERSION}: re-run `vrmbg install` with that "
                "engine so the plugin matches it")
        with self._lock:
            self._ready = ready
        return ready

    def _internal_request(self, op: str, **fields: Any) -> Request:
        """A request of the client's own (hello, re-opens), sent at once."""
        request_id = f"{self._prefix}{op}-{next(self._ids)}"
        req = Request(request_id, op, dict(fields, id=request_id, op=op))
        with self._lock:
            self._internal[request_id] = req
        self._write(req.message)
        return req

    def _wait_internal(self, req: Request, proc: subprocess.Popen, timeout: float,
                       phase: str) -> Dict[str, Any]:
        """Wait for an internal request, watching the process; EngineUnavailable on failure."""
        deadline = time.monotonic() + timeout
        while not req.done():
            if proc.poll() is not None:
                time.sleep(0.1)  # let the log reader catch the last lines
                died = EngineUnavailable(
                    f"the engine worker exited with code {proc.returncode} during {phase}: "
                    f"{' | '.join(self.log_tail(5)) or 'no log'}")
                died.died = True  # a crash (worth a restart), not a refusal
                raise died
            if time.monotonic() > deadline:
                self._kill(proc)
                raise EngineUnavailable(f"the engine worker did not answer {req.op} within "
                                        f"{timeout:g} s ({phase}); log: "
                                        f"{' | '.join(self.log_tail(5)) or 'empty'}")
            req._done.wait(0.05)
        final = req.final or {}
        if final.get("event") == "error" and req.op == "hello":
            raise EngineUnavailable(f"the engine refused hello: {final.get('message')}")
        return final

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            proc.kill()
        except OSError:
            pass
        self._wait_exit(proc, KILL_WAIT_SECONDS)

    @staticmethod
    def _wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    @staticmethod
    def _close_stdin(proc: subprocess.Popen) -> None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass

    def _write(self, message: Mapping[str, Any]) -> bool:
        """Write one request line to the current worker (False when it cannot be written)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return False
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        with self._write_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
                return True
            except (OSError, ValueError):
                return False  # it died: the reader thread sees the end and restarts it

    def _send(self, req: Request) -> None:
        """Send a pending request to the current worker (lock held)."""
        self._sent.add(req.id)
        self._write(req.message)

    def _go_ready(self, resend: bool) -> None:
        """Mark the worker ready and send every pending request not yet sent (lock held)."""
        self._state = "ready"
        if resend:
            self._resent = set(self._pending)
        for req in list(self._pending.values()):
            if req.id not in self._sent:
                self._send(req)

    # ------------------------------------------------------------------ reader threads

    def _read_events(self, proc: subprocess.Popen, generation: int) -> None:
        """Deliver every event of one worker; at its end, handle the worker's exit."""
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                event = json.loads(raw.decode("utf-8"))
            except ValueError:
                with self._lock:
                    self._log.append("(not an event) " + raw.decode("utf-8", "replace").strip())
                continue
            if isinstance(event, dict):
                self._dispatch(event)
        proc.wait()
        self._on_exit(proc, generation)

    def _read_log(self, proc: subprocess.Popen, generation: int) -> None:
        """Keep the worker's last log lines."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            with self._lock:
                if generation == self._generation:
                    self._log.append(line)

    def _dispatch(self, event: Dict[str, Any]) -> None:
        """Route an event to its request and to the listeners."""
        request_id = event.get("id")
        final = event.get("event") not in PROGRESS_EVENTS
        req = None
        with self._lock:
            if isinstance(request_id, str):
                req = self._pending.get(request_id) or self._internal.get(request_id)
                if req is not None and final:
                    self._pending.pop(request_id, None)
                    self._internal.pop(request_id, None)
                    self._sent.discard(request_id)
                    self._note_finished(req, event)
            listeners = list(self._listeners)
        if req is not None:
            if final:
                req._resolve(event)
            else:
                req.events.append(event)
        for fn in listeners:
            _call_safely(fn, event)

    def _note_finished(self, req: Request, event: Dict[str, Any]) -> None:
        """Bookkeeping when a request ends (lock held): open sessions, restart counting."""
        if req.op == "open" and event.get("event") == "opened":
            fields = {k: v for k, v in req.message.items() if k not in ("id", "op")}
            fields["session"] = event.get("session") or fields.get("session")
            self._sessions[str(fields["session"])] = fields
        if req.id in self._resent:
            self._resent.discard(req.id)
            if not self._resent:
                self._in_a_row = 0  # every request re-sent after the crash has finished

    # ------------------------------------------------------------------ crashes

    def _on_exit(self, proc: subprocess.Popen, generation: int) -> None:
        """A worker ended: report it and, unless we are closing, start another."""
        with self._lock:
            if generation != self._generation or generation in self._exits_handled \
                    or self._state in ("starting", "restarting"):
                return  # a (re)start in progress sees the death itself and handles it
            self._exits_handled.add(generation)
            if self._closing:
                self._state = "stopped"
            else:
                self._state = "restarting"
        if self._closing:
            self._finish_exit(proc)
            return
        time.sleep(0.05)  # the log reader's last lines
        tail = self.log_tail(10)
        message = (f"the engine worker (pid {proc.pid}) exited with code {proc.returncode}"
                   + (f": {tail[-1]}" if tail else ""))
        worker_registry.forget_worker(self._record)
        with self._lock:
            work = bool(self._pending) or bool(self._sessions)
        if not work:
            self._emit(self._died_event(proc.returncode, message, tail, False))
            with self._lock:
                self._state = "stopped"
            return
        self._restart(self._died_event(proc.returncode, message, tail, True))

    def _died_event(self, code: Any, message: str, tail: List[str],
                    restarting: bool) -> Dict[str, Any]:
        return {"id": None, "event": "worker_died", "code": code, "message": message,
                "log": tail, "restarting": restarting}

    def _restart(self, died: Dict[str, Any]) -> None:
        """Start a new worker, re-open the sessions, re-send the unanswered requests; give
        up after `max_restarts` deaths in a row."""
        while True:
            with self._lock:
                give_up = self._in_a_row >= self.max_restarts
            if give_up:
                died["restarting"] = False
                self._emit(died)
                self._fail_all(f"{died['message']} (it died {self._in_a_row + 1} times in a "
                               "row; not restarted)")
                return
            self._emit(died)
            with self._lock:
                self._in_a_row += 1
                self.restarts += 1
            try:
                ready = self._spawn()
                self._reopen_sessions()
                break
            except EngineUnavailable as exc:
                proc = self._proc
                if not getattr(exc, "died", False) or proc is None:  # refused: no retry
                    self._fail_all(exc.message)
                    return
                worker_registry.forget_worker(self._record)
                died = self._died_event(proc.returncode, exc.message, self.log_tail(10), True)
        with self._lock:
            self._go_ready(resend=True)
        self._emit({"id": None, "event": "worker_restarted", "pid": ready.get("pid"),
                    "sessions": list(self._sessions)})
        self._check_still_alive()

    def _check_still_alive(self) -> None:
        """A worker that died while a (re)start was still under way was not handled by its
        reader thread: handle it now."""
        with self._lock:
            proc, generation = self._proc, self._generation
        if proc is not None and proc.poll() is not None:
            self._on_exit(proc, generation)

    def _reopen_sessions(self) -> None:
        """Open every session the old worker had, under the same ids (and settings)."""
        with self._lock:
            pending_opens = {r.message.get("session") for r in self._pending.values()
                             if r.op == "open"}
            sessions = [dict(f) for s, f in self._sessions.items() if s not in pending_opens]
            proc = self._proc
        for fields in sessions:
            req = self._internal_request("open", **fields)
            assert proc is not None
            self._wait_internal(req, proc, self.start_timeout, "re-opening sessions")

    def _fail_all(self, message: str) -> None:
        """End every unanswered request with EngineUnavailable."""
        with self._lock:
            self._state = "stopped"
            waiting = list(self._pending.values()) + list(self._internal.values())
            self._pending.clear()
            self._internal.clear()
            self._sent = set()
        for req in waiting:
            req._resolve({"id": req.id, "event": "error", "code": 1, "message": message,
                          "unavailable": True})

    def _finish_exit(self, proc: subprocess.Popen) -> None:
        """After a deliberate stop: forget the record, end what waits."""
        worker_registry.forget_worker(self._record)
        self._fail_all("the engine worker was shut down")
        with self._lock:
            if self._proc is proc:
                self._proc = None

    def _emit(self, event: Dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            _call_safely(fn, event)


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
