"""The worker's request loop: stdin lines -> checked requests -> answers or queued jobs.

The loop thread reads and answers quick requests itself (hello, status, cache_info, cancel,
release, close, shutdown), so they are answered while a frame computes; opens go to the open
queue, ensures and clears to the compute queue, and prunes to the housekeeping queue (never
kept waiting behind a long analysis). It returns when stdin closes, after
`shutdown`, or when the host process that started the worker is gone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, BinaryIO

from ...plugin import schema
from ...plugin.protocol import MAX_LINE_BYTES, PROTOCOL_VERSION
from .. import __version__
from ..io.frames import format_frame_ranges
from . import jobs
from .compute import DROP_SUPERSEDED, Job, JobQueue
from .events import EventWriter
from .protocol import BadRequest, Request, parse_request
from .sessions import SessionRegistry, WorkerSession, check_frames, resolve_settings

PARENT_POLL_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 120.0  # at shutdown, how long the frame being computed may take


def schema_list() -> list[dict[str, Any]]:
    """The parameter schema as JSON-friendly dicts, for a host to build its controls."""
    return [{"name": p.name, "kind": p.kind, "default": p.default, "label": p.label,
             "help": p.help, "group": p.group, "choices": list(p.choices),
             "minimum": p.minimum, "maximum": p.maximum, "hosts": sorted(p.hosts),
             "affects_result": p.affects_result} for p in schema.PARAMS]


def available_devices() -> list[str]:
    """Devices the model could run on here, CPU first."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def read_line(stream: BinaryIO) -> tuple[bytes | None, int]:
    """The next line without its line break (None at end of input) and its full length; a
    line over the limit is read to its end and returned cut short, so the next request
    starts clean."""
    line = stream.readline(MAX_LINE_BYTES + 2)
    if not line:
        return None, 0
    if line.endswith(b"\n"):
        body = line.rstrip(b"\r\n")
        return body, len(body)
    length = len(line)
    while True:
        chunk = stream.readline(1 << 16)
        if not chunk:
            break
        if chunk.endswith(b"\n"):
            length += len(chunk) - 1
            break
        length += len(chunk)
    return line, length


class Worker:
    """One worker process's state and its request handlers."""

    def __init__(self, events: EventWriter, cache_root: str = "") -> None:
        from ..engine.models import ModelPool

        self.ctx = jobs.WorkerContext(events=events, models=ModelPool(),
                                      sessions=SessionRegistry(), cache_root=cache_root)
        self.ctx.compute = JobQueue("compute", self._dropped, self._answer)
        self.ctx.opener = JobQueue("open", self._dropped, self._answer)
        self.ctx.housekeeping = JobQueue("housekeeping", self._dropped, self._answer)
        self.events = events
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ loop

    def serve(self, stream: BinaryIO) -> int:
        """Answer requests from `stream` until it ends or `shutdown`; returns the exit code."""
        while not self.stopping.is_set():
            line, length = read_line(stream)
            if line is None:
                jobs.log("input closed: stopping")
                break
            if not line.strip():
                continue
            self.handle_line(line, length)
        self.stop()
        return 0

    def handle_line(self, line: bytes, length: int) -> None:
        """Parse and answer one line; a bad one gets an `error` event and nothing else."""
        request_id = None
        try:
            if length > MAX_LINE_BYTES:
                raise BadRequest(f"request line of {length} bytes is over the "
                                 f"{MAX_LINE_BYTES}-byte limit")
            request = parse_request(line)
            request_id = request.id
            getattr(self, f"op_{request.op}")(request)
        except BadRequest as exc:
            self.events.send("error", exc.request_id, code=exc.code, message=exc.message)
        except Exception as exc:  # a bug: the next request still works
            self.events.send("error", request_id, **jobs.error_fields(exc, request_id))

    def stop(self) -> None:
        """Stop both queues (the frame being computed finishes and stays cached)."""
        self.stopping.set()
        self.ctx.opener.stop(STOP_TIMEOUT_SECONDS)
        self.ctx.compute.stop(STOP_TIMEOUT_SECONDS)
        self.ctx.housekeeping.stop(STOP_TIMEOUT_SECONDS)

    def _answer(self, job: Job, result: Any) -> None:
        """Send a finished job's final event (an internal error when it gave none)."""
        if result is None:
            self.events.send("error", job.request_id, code=1,
                             message=f"internal error: {job.op} ended without an answer "
                                     "(see the worker log)")
            return
        name, fields = result
        self.events.send(name, job.request_id, **fields)

    def _dropped(self, job: Job, reason: str) -> None:
        """Answer a job that ended before it ran."""
        if job.op == "ensure":
            self.events.send("done", job.request_id, frames=job.frames, computed=0, from_cache=0,
                             cancelled=reason != DROP_SUPERSEDED,
                             superseded=reason == DROP_SUPERSEDED)
        elif job.op == "open":
            self.events.send("error", job.request_id, code=2,
                             message="open was stopped: the worker is shutting down")
        else:
            self.events.send("done", job.request_id, cancelled=True)

    # ------------------------------------------------------------------ ops

    def op_hello(self, request: Request) -> None:
        """Answer `ready`: what this engine is, so a host can refuse a mismatch."""
        if request.get("client"):
            jobs.log(f"hello from {request.get('client')}")
        self.events.send("ready", request.id, protocol=PROTOCOL_VERSION,
                         engine_version=__version__, devices=available_devices(),
                         schema=schema_list(), pid=os.getpid())

    def op_open(self, request: Request) -> None:
        """Register a session and queue its opening (plates, colour, model)."""
        settings = resolve_settings(dict(request.get("settings") or {}), request.id)
        session_id = request.get("session") or self.ctx.sessions.new_id()
        ws = WorkerSession(session_id, request.get("input"), settings,
                           preview=bool(request.get("preview", False)),
                           movie_start=int(request.get("movie_start", 1001)))
        old = self.ctx.sessions.add(ws)
        if old is not None:
            self._end_session(old)
        self.ctx.opener.submit(Job(request.id, "open", session_id,
                                   lambda job: jobs.run_open(self.ctx, ws, job)))

    def op_ensure(self, request: Request) -> None:
        """Queue an ensure (after ending the session's queued ones when it supersedes)."""
        ws = self.ctx.sessions.get(request.get("session"), request.id)
        targets = check_frames(request.id, request.get("frame"), request.get("frames", ""))
        supersede = bool(request.get("supersede", False))
        if supersede:
            self.ctx.compute.supersede(ws.id)
        self.ctx.compute.submit(Job(request.id, "ensure", ws.id,
                                    lambda job: jobs.run_ensure(self.ctx, ws, targets, job),
                                    playhead=supersede, frames=format_frame_ranges(targets)))

    def op_cancel(self, request: Request) -> None:
        """Stop running and queued ensures (of one session, or all)."""
        session_id = request.get("session", "")
        if session_id:
            self.ctx.sessions.get(session_id, request.id)
        count = self.ctx.compute.cancel(session_id)
        self.events.send("done", request.id, cancelled=count)

    def op_status(self, request: Request) -> None:
        """What the worker is doing now (answered while a frame computes)."""
        session_id = request.get("session", "")
        chosen = ([self.ctx.sessions.get(session_id, request.id)] if session_id
                  else self.ctx.sessions.all())
        current, queued = self.ctx.compute.snapshot()
        if current is not None:
            current = {k: current[k] for k in ("session", "frame", "request")}
        self.events.send("status", request.id, busy=current is not None, current=current,
                         queued=queued, sessions={ws.id: ws.summary() for ws in chosen},
                         models=self.ctx.models.loaded())

    def op_cache_info(self, request: Request) -> None:
        """Where a session's cache is and what it holds."""
        ws = self.ctx.sessions.get(request.get("session"), request.id)
        if not ws.ready.wait(0) or ws.open_error:
            raise BadRequest(f"session {ws.id!r} is not open"
                             f"{': ' + ws.open_error if ws.open_error else ' yet'}", request.id)
        if ws.matte is not None and ws.lock.acquire(blocking=False):
            try:  # idle: look again (another process may have added frames)
                ws.cached = set(ws.matte.cached_frames())
            finally:
                ws.lock.release()
        folder = ws.facts["folder"]
        cached = sorted(ws.cached)
        self.events.send("cache", request.id, folder=folder, **jobs.cache_sizes(folder),
                         cached=format_frame_ranges(cached), cached_count=len(cached),
                         matte_pattern=ws.facts["matte_pattern"],
                         **jobs.cache_places(folder))

    def op_clear(self, request: Request) -> None:
        """Queue the removal of a session's chain from the cache."""
        ws = self.ctx.sessions.get(request.get("session"), request.id)
        self.ctx.compute.submit(Job(request.id, "clear", ws.id,
                                    lambda job: jobs.run_clear(self.ctx, ws, job)))

    def op_prune(self, request: Request) -> None:
        """Queue a prune of the session's shot (or whole cache) down to `max_bytes`."""
        ws = self.ctx.sessions.get(request.get("session"), request.id)
        max_bytes = int(request.get("max_bytes", 0))
        scope = str(request.get("scope", "shot"))
        self.ctx.housekeeping.submit(Job(request.id, "prune", ws.id, lambda job: jobs.run_prune(
            self.ctx, ws, max_bytes, scope, job)))

    def op_release(self, request: Request) -> None:
        """Drop loaded models; each session reloads its model on its next ensure."""
        self.ctx.sessions.drop_models()
        count = self.ctx.models.release()
        jobs.log(f"released {count} model(s)")
        self.events.send("done", request.id, released=count)

    def op_close(self, request: Request) -> None:
        """Forget a session (its running and queued ensures end as cancelled)."""
        ws = self.ctx.sessions.get(request.get("session"), request.id)
        self.ctx.sessions.remove(ws.id)
        self._end_session(ws)
        self.events.send("done", request.id)

    def op_shutdown(self, request: Request) -> None:
        """Answer, then stop: the loop ends and the process exits 0."""
        self.ctx.compute.cancel("")
        self.events.send("done", request.id)
        self.stopping.set()

    def _end_session(self, ws: WorkerSession) -> None:
        """Stop a session's work before it is replaced or closed."""
        ws.closed = True
        self.ctx.compute.cancel(ws.id, ops=("ensure", "clear"))


def watch_parent(worker: Worker) -> None:
    """Exit when the process that started us is gone (its stdin may live on elsewhere)."""
    parent = os.getppid()

    def loop() -> None:
        while not worker.stopping.is_set():
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent:
                jobs.log(f"host process {parent} is gone: stopping")
                worker.stop()
                os._exit(0)

    if parent > 1 and os.name == "posix":
        threading.Thread(target=loop, name="vrmbg-parent-watch", daemon=True).start()


def run_worker(cache_dir: str = "", threads: int = 0) -> int:
    """Serve the protocol on this process's stdin/stdout; returns the exit code.

    Events get a private copy of stdout; file descriptor 1 then points at stderr, so a stray
    print (ours, a library's or C code's) lands in the log instead of breaking the protocol.
    """
    from ..cpu import set_process_threads

    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    events = EventWriter(os.fdopen(events_fd, "wb"))
    _threads, warning = set_process_threads(threads)
    if warning:
        jobs.log(warning)
    worker = Worker(events, cache_root=cache_dir)
    watch_parent(worker)
    jobs.log(f"ready (pid {os.getpid()}, protocol {PROTOCOL_VERSION}, engine {__version__})")
    return worker.serve(sys.stdin.buffer)
