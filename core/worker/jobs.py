"""What the worker's queued requests do: open a shot, ensure frames, clear a chain.

Each runs on a queue thread (`compute.JobQueue`) and returns its request's one final event,
`opened` / `done` or `error`, which the queue sends once the job is no longer running.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

from ...plugin.protocol import STAGE_COMPUTING, STAGE_LOADING
from ..errors import EXIT_INTERNAL, Cancelled, VrmbgError, first_line, one_line
from ..io.frames import format_frame_ranges
from .compute import Job, JobQueue
from .events import EventWriter
from .sessions import SessionRegistry, WorkerSession


@dataclass
class WorkerContext:
    """What every job needs: the output, the shared models, the sessions and the queues."""

    events: EventWriter
    models: Any  # ModelPool
    sessions: SessionRegistry
    cache_root: str
    compute: JobQueue | None = None
    opener: JobQueue | None = None
    housekeeping: JobQueue | None = None  # prunes: never behind a long computation


def log(text: str) -> None:
    """One human line on the worker's log (stderr)."""
    print(f"vrmbg worker: {text}", file=sys.stderr, flush=True)


Answer = Tuple[str, Dict[str, Any]]  # a job's final event: (name, fields)


def error_fields(exc: BaseException, request_id: Any = None) -> dict[str, Any]:
    """The fields of the `error` event for an exception (a traceback only for bugs)."""
    if isinstance(exc, VrmbgError):
        return {"code": exc.exit_code, "message": str(exc)}
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log(f"request {request_id!r} failed:\n{trace}")
    return {"code": EXIT_INTERNAL, "traceback": trace,
            "message": one_line(f"internal error: {type(exc).__name__}: {first_line(exc)}")}


# --------------------------------------------------------------------------- open

def open_engine_session(ctx: WorkerContext, ws: WorkerSession, request_id: Any) -> Any:
    """Build the engine session of `ws` (loading its model), with progress while it loads."""
    from ..engine.opening import open_shot

    progress = {"session": ws.id, "frame": None, "total": 1, "seconds_per_frame": 0.0,
                "eta_seconds": None, "stage": STAGE_LOADING}
    ctx.events.send("progress", request_id, done=0, **progress)
    began = time.perf_counter()
    shot = open_shot(ws.input, ws.settings, models=ctx.models, movie_start=ws.movie_start)
    matte = shot.session(cache_root=ctx.cache_root, preview=ws.preview)
    ctx.events.send("progress", request_id, done=1, **progress)
    log(f"session {ws.id}: {ws.input} ready in {time.perf_counter() - began:.2f} s "
        f"({matte.tier}, chain {matte.chain_id})")
    return matte


def cache_places(chain_folder: str) -> dict[str, str]:
    """Where a chain sits, as a host needs it: `cache_root`, `shot_folder` (the shot's folder
    relative to the root, named by the engine) and `chain_folder` (the chain's own folder
    relative to the root: what a host moves when an unsaved file is first saved,
    `plugin.paths.adopt_unsaved_cache`, leaving other sessions' chains of the shot alone)."""
    from ..engine.cache import chain_parents

    parents = chain_parents(os.path.abspath(chain_folder))
    if parents is None:
        return {"cache_root": "", "shot_folder": "", "chain_folder": ""}
    root, shot_dir, _tier = parents
    return {"cache_root": root, "shot_folder": os.path.relpath(shot_dir, root),
            "chain_folder": os.path.relpath(os.path.abspath(chain_folder), root)}


def cache_sizes(chain_folder: str) -> dict[str, int]:
    """`bytes` (the chain's folder), `shot_bytes` (the shot's folder: every chain of both
    tiers and the shot's own files) and `other_chains` / `other_bytes` (the shot's chains of
    other settings, what a prune can free; never the shot's own files)."""
    from ..engine.housekeeping import folder_size, iter_chain_dirs

    chain = os.path.abspath(chain_folder)
    shot = os.path.dirname(os.path.dirname(chain))
    others = [folder for name, _tier, folder in iter_chain_dirs(os.path.dirname(shot))
              if name == os.path.basename(shot) and os.path.abspath(folder) != chain] \
        if os.path.isdir(shot) else []
    return {"bytes": folder_size(chain) if os.path.isdir(chain) else 0,
            "shot_bytes": folder_size(shot) if os.path.isdir(shot) else 0,
            "other_chains": len(others), "other_bytes": sum(map(folder_size, others))}


def session_facts(matte: Any) -> dict[str, Any]:
    """The `opened` fields that describe a shot's engine session."""
    frames = list(matte.frames.frames)  # the shot's frames (from its shot start)
    loaded = matte.stepper.loaded
    return {"first": frames[0], "last": frames[-1], "frames": format_frame_ranges(frames),
            "total": len(frames), "matte_pattern": os.path.abspath(matte.matte_pattern),
            "chain_id": matte.chain_id, "tier": matte.tier, "folder": matte.folder,
            **cache_places(matte.folder),
            "device": str(loaded.device), "precision": str(loaded.dtype).replace("torch.", ""),
            "model_fingerprint": str(loaded.fingerprint),
            "colour": str(matte.colour.describe())}


def run_open(ctx: WorkerContext, ws: WorkerSession, job: Job) -> Answer:
    """Open a shot: check the plates, load the model, answer `opened`."""
    try:
        matte = open_engine_session(ctx, ws, job.request_id)
        with ws.lock:
            ws.matte = matte
            ws.facts = session_facts(matte)
            ws.cached = set(matte.cached_frames())
    except Exception as exc:  # the open fails; the session stays known so errors name it
        fields = error_fields(exc, job.request_id)
        ws.open_error = ws.last_error = fields["message"]
        ws.ready.set()
        return "error", fields
    ws.ready.set()
    cached = sorted(ws.cached)
    facts = {k: v for k, v in ws.facts.items() if k != "folder"}
    return "opened", dict(session=ws.id, cached=format_frame_ranges(cached),
                          cached_count=len(cached), **facts, **cache_sizes(ws.facts["folder"]))


# --------------------------------------------------------------------------- ensure

class FrameAnnouncer:
    """Sends the `frame` events of one ensure, for every requested frame, in order."""

    def __init__(self, ctx: WorkerContext, ws: WorkerSession, job: Job, targets: list[int]) -> None:
        self.ctx, self.ws, self.job = ctx, ws, job
        self.pending = list(targets)  # not announced yet, ascending

    def announce(self, frame: int, path: str) -> None:
        """One `frame` event (the matte's tier from where it lives)."""
        matte = self.ws.matte
        own = os.path.abspath(path) == os.path.abspath(matte.matte_path(frame))
        tier = matte.tier if own else "final"
        self.ws.cached.add(frame)  # before the event: a status sent after it counts the frame
        self.ctx.events.send("frame", self.job.request_id, session=self.ws.id, frame=frame,
                             path=os.path.abspath(path), exact=tier == "final", tier=tier)

    def up_to(self, frame: int) -> None:
        """Announce every pending target up to `frame` while a final chain computes forward:
        the earlier ones were valid in the cache, `frame` has just been written."""
        matte = self.ws.matte
        while self.pending and self.pending[0] <= frame:
            target = self.pending[0]
            path = matte.matte_path(target)
            if target != frame and not os.path.isfile(path):
                break  # not computed in order after all: the end of the pass says it
            self.pending.pop(0)
            self.announce(target, path)

    def rest(self, answers: dict[int, str]) -> None:
        """Announce what is left, from the engine's answers."""
        for target in self.pending:
            self.announce(target, answers[target])
        self.pending = []


def _progress_callback(ctx: WorkerContext, ws: WorkerSession, job: Job,
                       announcer: FrameAnnouncer) -> Callable[[int, int, int], None]:
    """The engine's per-frame progress -> `progress` and `frame` events."""
    began = time.perf_counter()
    streaming = ws.matte.tier == "final"

    def progress(done: int, total: int, frame: int) -> None:
        per_frame = (time.perf_counter() - began) / max(1, done)
        ws.seconds_per_frame = per_frame
        job.frame = frame + 1 if done < total else None
        if streaming:
            announcer.up_to(frame)
        ctx.events.send("progress", job.request_id, session=ws.id, frame=frame, done=done,
                        total=total, seconds_per_frame=round(per_frame, 4),
                        eta_seconds=round(per_frame * (total - done), 2),
                        stage=STAGE_COMPUTING)

    return progress


def run_ensure(ctx: WorkerContext, ws: WorkerSession, targets: list[int], job: Job) -> Answer:
    """Answer an ensure: frames from the cache or computed forward, then `done`."""
    ws.ready.wait()
    if ws.closed or job.stop.is_set():
        return "done", dict(frames=format_frame_ranges(targets), computed=0, from_cache=0,
                            cancelled=not job.superseded, superseded=job.superseded)
    if ws.open_error:
        return "error", dict(code=2, message=one_line(f"session {ws.id} did not open: "
                                                      f"{ws.open_error}"))
    with ws.lock:
        try:
            return _ensure_locked(ctx, ws, targets, job)
        finally:
            if ws.stale:
                ws.matte, ws.stale = None, False


def _ensure_locked(ctx: WorkerContext, ws: WorkerSession, targets: list[int], job: Job) -> Answer:
    """The ensure itself, with the session's lock held."""
    try:
        if ws.matte is None:  # models were released: open again (reloads the model)
            ws.matte = open_engine_session(ctx, ws, job.request_id)
        matte = ws.matte
        before = matte.counters  # a snapshot
        computed0, cached0 = before.frames_computed, before.frames_from_cache
        announcer = FrameAnnouncer(ctx, ws, job, targets)
        job.frame = targets[0]
        cancelled = False
        try:
            answers = matte.ensure_range(targets, cancel=job.stop.is_set,
                                         progress=_progress_callback(ctx, ws, job, announcer))
            announcer.rest(answers)
        except Cancelled:
            cancelled = True
        ws.last_error = ""
    except Exception as exc:
        fields = error_fields(exc, job.request_id)
        ws.last_error = fields["message"]
        return "error", fields
    finally:
        job.frame = None
    counters = matte.counters
    return "done", dict(frames=format_frame_ranges(targets),
                        computed=counters.frames_computed - computed0,
                        from_cache=counters.frames_from_cache - cached0,
                        cancelled=cancelled and not job.superseded,
                        superseded=cancelled and job.superseded)


# --------------------------------------------------------------------------- clear

def run_clear(ctx: WorkerContext, ws: WorkerSession, job: Job) -> Answer:
    """Drop the session's chain from the cache (refused while another process computes it)."""
    from ..engine.housekeeping import remove_chain

    ws.ready.wait()
    folder = ws.facts.get("folder", "")
    with ws.lock:
        try:
            removed = bool(folder) and remove_chain(folder)
        except Exception as exc:
            return "error", error_fields(exc, job.request_id)
        if removed:
            ws.cached.clear()
    log(f"session {ws.id}: cache {'cleared' if removed else 'not cleared'} ({folder})")
    return "done", {"removed": removed}


# --------------------------------------------------------------------------- prune

def run_prune(ctx: WorkerContext, ws: WorkerSession, max_bytes: int, scope: str,
              job: Job) -> Answer:
    """Delete least recently used chains until the session's shot (`scope` "shot") or its
    whole cache root ("cache") fits in `max_bytes`, as `vrmbg cache prune` does: never a
    chain a process is computing, never through a symbolic link, only in a vrmbg cache, and
    never a chain a session of this worker has open (what a host shows)."""
    from ..engine.housekeeping import claim_cache, list_chains, prune_chains

    ws.ready.wait()
    folder = ws.facts.get("folder", "")
    places = cache_places(folder) if folder else {}
    root = places.get("cache_root", "")
    if not root:
        return "error", dict(code=2, message=one_line(
            f"prune: session {ws.id} did not open: {ws.open_error or 'no cache folder'}"))
    try:
        claim_cache(root)
        skipped: list[str] = []
        chains = [c for c in list_chains(root, skipped)
                  if scope == "cache" or c.shot == places["shot_folder"]]
        in_use = [s.facts.get("folder", "") for s in ctx.sessions.all() if s.facts.get("folder")]
        removed, kept, total = prune_chains(chains, max_bytes, keep=in_use, stop=job.stop.is_set)
    except Exception as exc:
        return "error", error_fields(exc, job.request_id)
    freed = sum(c.size for c in removed)
    log(f"session {ws.id}: pruned {len(removed)} chain(s), {freed} bytes ({scope} of {root})")
    return "done", dict(removed=[c.chain_id for c in removed],
                        kept_in_use=[c.chain_id for c in kept], skipped_links=skipped,
                        bytes_freed=freed, bytes_after=total, max_bytes=max_bytes,
                        scope=scope, cache_root=root,
                        **cache_sizes(folder))
