"""A matte in a host, written once for Nuke and Blender: its engine session, the frames known
valid, following the playhead, the exact frame a render needs, staleness, progress, status.

    hub = SessionHub(get_client, on_change=redraw, on_opened=apply)  # session_hub.py
    session = hub.session(node_id)                   # one per matte (a node, a node group)
    session.ask(plate_pattern, settings)             # what the host's knobs say now
    session.follow(frame)                            # the playhead: newest frame wins, no wait
    path = session.exact_frame(frame)                # a render callback: blocks until exact
    analysis = session.analyse("1001-1100")          # a range, with progress and cancel
    session.status_text(frame)                       # the host's status line(s)
    session.cache_size_text()                        # "cache 1.2 GB" (also in the status)
    session.prune_cache("20G")                       # what `vrmbg cache prune` does

It never touches a host object. Engine events arrive on the client's reader thread; whatever
thread learns something calls the hub's `on_change(session)` (and `on_opened(session,
answer)` when a session opens), and the host moves its UI work to its main thread. A changed
`ask` (another plate, another setting) drops every frame known valid at once: nothing is
shown as valid until the engine says it is valid for what is asked now.
Standard library only, Python 3.9+.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import uuid
from typing import (Any, Callable, Dict, Iterator, Mapping, Optional, Protocol, Set, Tuple,
                    Union)

from . import paths
from .analysis import Analysis
from .frame_ranges import nearest_frame, parse_frame_ranges
from .platform_check import unsupported_platform
from .protocol import STAGE_COMPUTING, STAGE_LOADING
from .requests import EngineError, EngineUnavailable, Event, Request, error_text
from .settings import Settings
from .sizes import parse_size, size_text
from .status import (Status, cache_size_text, for_host, noted, progress_text, status_line,
                     status_text)

OPENING = "opening the shot (loading the model)"
STARTING = "starting the engine, then opening the shot (loading the model)"
STOPPING = "stopping after the frame in flight"


def new_owner_id() -> str:
    """A fresh id for a new matte (it names the matte's engine sessions)."""
    return uuid.uuid4().hex[:12]


def session_key(input: str, settings: Mapping[str, Any], extra: Tuple[Any, ...] = ()) -> str:
    """Everything that decides a matte's frames, as text: a new key is a new session."""
    return json.dumps([str(input), dict(settings), *extra], sort_keys=True, default=str)


def session_id(owner: str, key: str) -> str:
    """The engine session of an owner's matte under one key (nothing on disk depends on it)."""
    return f"{owner}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:10]}"


class Hub(Protocol):
    """What a session needs of its hub (`session_hub.SessionHub`): the client, the routing of
    its events, and the host's hooks."""

    def client(self) -> Any: ...

    def route(self, session: str, host_session: "HostSession") -> None: ...

    def close(self, session: str) -> None: ...

    def changed(self, session: "HostSession") -> None: ...

    def opened(self, session: "HostSession", answer: Event) -> None: ...


def _wire(settings: Union[Settings, Mapping[str, Any]]) -> Dict[str, Any]:
    """Settings as the wire's mapping (a `Settings` or a mapping of schema names)."""
    return settings.to_mapping() if isinstance(settings, Settings) else dict(settings)


class HostSession:
    """One matte: what the host asks for, the engine session serving it, what is known."""

    def __init__(self, owner: str, hub: Hub) -> None:
        self.owner = owner
        self.hub = hub
        self.lock = threading.RLock()
        self.status = Status()
        self.valid: Set[int] = set()  # frames whose cached matte is valid for `want_key`
        self.want_key = ""  # what the host asks for now ("" = nothing can be asked)
        self._wanted: Tuple[str, Dict[str, Any]] = ("", {})
        self.plan_key = ""  # what the open session serves
        self.session = ""
        self.opened: Event = {}
        self.engine: Any = None  # the client it was opened in: callbacks use it (a reader
        #                          thread never asks the host for its client)
        self.follow_frame: Optional[int] = None
        self._follow_key = ""
        self._open_lock = threading.Lock()  # one open started at a time
        self._opening: Optional[Tuple[str, str, Request]] = None  # key, session, future
        self._opens = 0  # opens started: the answer to an older one is stale
        self._died_note = ""  # how the engine last stopped, until it is running again
        self._analyses = 0  # analyses running: their progress is the status's working text

    # ------------------------------------------------------------------ what is asked

    def ask(self, input: str, settings: Union[Settings, Mapping[str, Any]], *extra: Any) -> bool:
        """The host's plate and settings now (`extra`: more that decides the frames, e.g. a
        rendered input's range). True when that changed: every valid frame is dropped."""
        values = _wire(settings)
        keys = str(values.get("keyframes") or "")
        if keys:  # the keyframes on disk decide the frames (and the chain) too
            extra = (*extra, paths.sequence_files(keys))
        return self._adopt(session_key(input, values, extra), (str(input), values))

    def drop(self) -> bool:
        """Nothing can be asked (no input, a bad setting): nothing is valid any more."""
        return self._adopt("", ("", {}))

    def _adopt(self, key: str, wanted: Tuple[str, Dict[str, Any]]) -> bool:
        with self.lock:
            if key == self.want_key:
                return False
            self.want_key, self._wanted = key, wanted
            self.valid, self.follow_frame = set(), None
            self.status.cached = 0
            self.status.cache_bytes = self.status.chain_bytes = self.status.other_bytes = -1
        self._changed()
        return True

    @property
    def is_open(self) -> bool:
        """True when an engine session serves what is asked now."""
        with self.lock:
            return bool(self.session and self.want_key and self.plan_key == self.want_key)

    # ------------------------------------------------------------------ opening

    def open_async(self) -> Request:
        """The session for what is asked, opening it without waiting (loads the model); the
        future's callbacks run once the session's state has taken the answer. When no worker
        runs, it is started on a thread of its own (seconds: a host's UI never waits for
        it) while the status says so; a failed start is the future's `error` answer."""
        unsupported = unsupported_platform()
        if unsupported:  # one line, before any engine is looked for
            self.fail(unsupported)
            raise EngineUnavailable(unsupported)
        with self._open_lock:
            with self.lock:
                key, (input, settings) = self.want_key, self._wanted
                if not key:
                    raise ValueError("the matte has no plate to open")
                if self.session and self.plan_key == key:
                    return Request.answered("open", self.opened)
                if self._opening is not None and self._opening[0] == key:
                    return self._opening[2]
                old, self.session, self.plan_key = self.session, "", ""
                self._opens += 1
                number, session = self._opens, session_id(self.owner, key)
                future = Request(session, "open", {})
                self._opening = (key, session, future)
                self.status.working = OPENING
            try:
                client = self.engine = self.hub.client()
                if old:
                    self.hub.close(old)
                self.hub.route(session, self)
            except EngineError as error:
                self._open_failed(number, future, error)
                raise
            send = (lambda: client.open_request(input, settings, session=session))
            if getattr(client, "running", True):
                self._changed()
                self._send_open(number, key, future, send)
                return future
            with self.lock:
                self.status.working = STARTING
            self._changed()
        threading.Thread(target=self._send_open, args=(number, key, future, send, False),
                         name="vrmbg-engine-start", daemon=True).start()
        return future

    def _send_open(self, number: int, key: str, future: Request,
                   send: Callable[[], Request], raise_errors: bool = True) -> None:
        """Send the open (starting the worker first when none runs); its answer goes to
        `_opened`, a failure to start is the future's error (raised too with `raise_errors`)."""
        try:
            request = send()
        except EngineError as error:
            self._open_failed(number, future, error)
            if raise_errors:
                raise
            return
        request.add_done_callback(lambda answer: self._opened(number, key, future, answer))

    def _open_failed(self, number: int, future: Request, error: EngineError) -> None:
        """An open that could not be sent: the last error (when no newer open replaced it)."""
        with self.lock:
            latest = number == self._opens
            if latest:
                self._opening = None
        if latest:
            self.fail(error_text(error))
        future.resolve({"event": "error", "message": error.message, "code": error.code,
                        "unavailable": isinstance(error, EngineUnavailable)})

    def open(self, timeout: Optional[float] = None) -> Event:
        """The `opened` answer for what is asked (blocking: loads the model on first use)."""
        return self.open_async().wait(timeout)

    def _opened(self, number: int, key: str, future: Request, answer: Event) -> None:
        session = future.id
        with self.lock:
            latest = number == self._opens
            if latest:
                self._opening = None
            current = self.session or (self._opening[1] if self._opening else "")
        if not latest:  # a newer open replaced this one while it loaded: wait for that one
            if answer.get("event") != "error" and session != current:
                self.hub.close(session)
            with self.lock:
                newer, opened = (self._opening[2] if self._opening else None), dict(self.opened)
            if newer is not None:
                newer.add_done_callback(future.resolve)
            else:
                future.resolve(opened or answer)
            return
        if answer.get("event") == "error":
            self.fail(str(answer.get("message") or "the engine failed"))
        else:
            with self.lock:
                self.session, self.plan_key, self.opened = session, key, dict(answer)
                if key == self.want_key:
                    self.valid = set(parse_frame_ranges(str(answer.get("cached", "")),
                                                        empty_ok=True))
                self.status.total = int(answer.get("total", 0))
                self._take_sizes(answer)
                self.status.device = str(answer.get("device", ""))
                self.status.precision = str(answer.get("precision", ""))
                self.status.working = self.status.last_error = ""
            self.hub.opened(self, answer)
            self._changed()
        future.resolve(answer)

    def lost(self) -> None:
        """The worker this session was open in is gone for good (another client)."""
        with self.lock:
            self.session = self.plan_key = ""
            self.opened, self._opening, self.engine = {}, None, None

    # ------------------------------------------------------------------ frames

    def needs(self, frame: int) -> bool:
        """True when following `frame` would ask the engine (not asked already, not valid)."""
        with self.lock:
            asked = frame == self.follow_frame and self._follow_key == self.want_key
            return bool(self.want_key) and not asked and not (self.is_open and frame in self.valid)

    def follow(self, frame: int, *, clamp: bool = False,
               then: Optional[Callable[[Event], None]] = None) -> bool:
        """Ask for `frame` without waiting (opening the session first when needed); a newer
        frame supersedes it. `clamp`: ask for the nearest frame of the shot instead of one
        outside it. `then(answer)` runs when the request ends. True when a request was made."""
        with self.lock:
            if clamp and self.is_open:
                frame = self._clamp(frame)
            if not self.needs(frame):
                return False
            self.follow_frame, self._follow_key = frame, self.want_key
        self.open_async().add_done_callback(
            lambda answer: self._follow_opened(frame, clamp, then, answer))
        return True

    def _clamp(self, frame: int) -> int:
        return nearest_frame(frame, int(self.opened.get("first", frame)),
                             int(self.opened.get("last", frame)))

    def _follow_opened(self, frame: int, clamp: bool, then: Optional[Callable[[Event], None]],
                       answer: Event) -> None:
        if answer.get("event") == "error":
            if then is not None:
                then(answer)
            return
        with self.lock:
            if frame != self.follow_frame or not self.is_open:
                return  # a newer frame (or other settings) were asked meanwhile
            session, target = self.session, self._clamp(frame) if clamp else frame
        try:
            request = self.engine.ensure(session, frame=target, supersede=True)
        except EngineError as error:
            self.fail(error_text(error))
            return
        request.add_done_callback(lambda done: self._follow_done(done, then))

    def _follow_done(self, answer: Event, then: Optional[Callable[[Event], None]]) -> None:
        """The reader thread: never wait here; the cache is read again with a request."""
        with self.lock:
            if answer.get("event") == "error":
                self.status.last_error = for_host(str(answer.get("message") or
                                                      "the engine failed"))
            elif not answer.get("superseded"):
                self.status.working = ""
        self.sync()
        if then is not None:
            then(answer)

    def sync(self) -> None:
        """Take the engine's word for which frames are valid (frames computed on the way to
        a requested frame are cached too), then tell the host."""
        with self.lock:
            session, key, engine = self.session, self.plan_key, self.engine
        if not session or key != self.want_key or engine is None:
            self._changed()
            return
        try:
            request = engine.request("cache_info", session=session)
        except EngineError as error:
            self.fail(error_text(error))
            return
        request.add_done_callback(lambda answer: self._synced(session, key, answer))

    def _synced(self, session: str, key: str, answer: Event) -> None:
        with self.lock:
            if answer.get("event") == "error":
                self.status.last_error = for_host(str(answer.get("message") or
                                                      "the engine failed"))
            elif session == self.session and key == self.want_key:
                self.valid = set(parse_frame_ranges(str(answer.get("cached", "")),
                                                    empty_ok=True))
                self._take_sizes(answer)
        self._changed()

    def _take_sizes(self, answer: Event) -> None:
        """The cache sizes an engine answer carries (lock held; absent ones stay as known)."""
        if "shot_bytes" in answer:
            self.status.cache_bytes = int(answer.get("shot_bytes") or 0)
        if "bytes" in answer:
            self.status.chain_bytes = int(answer.get("bytes") or 0)
        if "other_chains" in answer:  # chains of other settings: what a prune can free
            self.status.other_bytes = int(answer.get("other_bytes") or 0) \
                if answer.get("other_chains") else -1

    def exact_frame(self, frame: int, *, clamp: bool = False,
                    timeout: Optional[float] = None) -> str:
        """The path of `frame`'s exact matte, blocking until it is computed (a render
        callback); EngineError says why it cannot be, and is the status's last error."""
        with self._reported():
            self.open(timeout)
            with self.lock:
                session, frame = self.session, self._clamp(frame) if clamp else frame
            path = self.engine.ensure_frame(session, frame, timeout=timeout)
        with self.lock:
            self.valid.add(frame)
        self._changed()
        return path

    def analyse(self, frames: str = "") -> Analysis:
        """Compute a range (range text; empty = the whole shot) in the background."""
        with self.lock:
            self._analyses += 1
        try:
            return Analysis(self, frames)
        except BaseException:
            with self.lock:
                self._analyses -= 1
            raise

    def stop(self) -> bool:
        """Stop computing after the frame in flight (finished frames stay cached)."""
        with self.lock:
            session, engine = self.session, self.engine
        if not session:
            return False
        with self.lock:
            self.status.working = STOPPING
        self._changed()
        engine.cancel(session).add_done_callback(self._stop_answered)
        return True

    def _stop_answered(self, answer: Event) -> None:
        """Nothing was running to stop: "stopping" must not stay shown."""
        with self.lock:
            idle = not answer.get("cancelled") and self.status.working == STOPPING
        if idle:
            self._settle()

    def clear_cache(self, timeout: Optional[float] = None) -> None:
        """Delete the cached frames of what is asked now (blocking)."""
        with self._reported():
            self.open(timeout)
            self.engine.clear(self.session)
        with self.lock:
            self.valid, self.follow_frame = set(), None
            noted(self.status, "cache cleared")
        self._changed()

    # ------------------------------------------------------------------ the cache on disk

    @property
    def cache_root(self) -> str:
        """The cache folder the open session writes to ("" before it is open)."""
        with self.lock:
            return str(self.opened.get("cache_root") or "")

    @property
    def shot_folder(self) -> str:
        """The shot's folder in the cache, relative to `cache_root`, as the engine names it
        ("" before it is open)."""
        with self.lock:
            return str(self.opened.get("shot_folder") or "")

    @property
    def chain_folder(self) -> str:
        """This session's chain folder, relative to `cache_root` ("" before it is open): what
        `paths.adopt_unsaved_cache` moves on a first save. Only the chain, never the whole
        shot folder, which other sessions and renders sharing the user cache also use."""
        with self.lock:
            return str(self.opened.get("chain_folder") or "")

    def cache_size_text(self) -> str:
        """`cache 1.2 GB`: the shot's cache on disk, as last said by the engine (when the
        session opened, and each time frames were added: no disk walk here); "" before."""
        with self.lock:
            return cache_size_text(self.status)

    def refresh_cache_size(self) -> None:
        """Ask the engine for the cache's size and valid frames again (without waiting)."""
        self.sync()

    def prune_cache(self, keep: Union[int, str] = 0, *, whole_cache: bool = False,
                    timeout: Optional[float] = 300.0) -> Event:
        """Delete least recently used chains of this shot (every setting but the ones open
        now) until it fits in `keep` (bytes, or a size such as "20G"; 0 keeps only what is
        shown), or with `whole_cache` the whole cache folder, as `vrmbg cache prune
        --max-size` does. Chains a process is computing are kept. Blocking (opens the session
        first); the status notes what was freed. ValueError for a size it cannot read."""
        max_bytes = parse_size(keep)
        with self._reported():
            self.open(timeout)
            with self.lock:
                session, engine = self.session, self.engine
            answer = engine.request("prune", session=session, max_bytes=max_bytes,
                                    scope="cache" if whole_cache else "shot").wait(timeout)
        removed, busy = list(answer.get("removed") or []), list(answer.get("kept_in_use") or [])
        note = (f"pruned {len(removed)} chain(s) of other settings, freed "
                f"{size_text(int(answer.get('bytes_freed') or 0))}" if removed
                else "nothing to prune")
        if busy:
            note += f" ({len(busy)} kept: being computed)"
        with self.lock:
            self._take_sizes(answer)
            noted(self.status, note)
        self._changed()
        return answer

    def release_models(self) -> int:
        """Unload the engine's models (GPU memory); they load again when next needed."""
        with self._reported():
            count = int(self.hub.client().release().get("released", 0))
        with self.lock:
            noted(self.status, f"released {count} model(s) from memory")
        self._changed()
        return count

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event) -> None:
        """A progress or frame event of one of this matte's sessions (reader thread)."""
        kind = event.get("event")
        if kind == "frame":
            with self.lock:
                current = event.get("session") == self.session and self.is_open
                if current and event.get("exact", True) and event.get("tier", "final") == "final":
                    self.valid.add(int(event["frame"]))
            if current:
                self._changed()
        elif kind == "progress":
            with self.lock:
                if event.get("seconds_per_frame"):
                    self.status.seconds_per_frame = float(event["seconds_per_frame"])
                self.status.working = progress_text(event)
                if event.get("stage", STAGE_COMPUTING) != STAGE_LOADING:
                    self.status.done = int(event.get("done") or 0)
                    self.status.todo = int(event.get("total") or 0)
            self._changed()

    def on_worker_died(self, event: Event) -> None:
        """The worker stopped: say whether the client is starting it again (and re-opening
        the sessions) or has not (it gave up after deaths in a row, or nothing was waiting):
        then it starts again only when next needed."""
        code = event.get("exit_code", event.get("code", "?"))
        with self.lock:
            self._died_note = f"the engine stopped (exit code {code})"
            if event.get("restarting"):
                note = f"{self._died_note}; restarting it"
            else:
                note = f"{self._died_note} and was not restarted (it starts when next needed)"
                self.status.working = ""
            noted(self.status, note)
        self._changed()

    def on_worker_restarted(self, event: Event) -> None:
        """The client started the worker again and re-opened the sessions."""
        with self.lock:
            died = self._died_note or "the engine stopped"
            self.status.notes = tuple(n for n in self.status.notes
                                      if n != f"{died}; restarting it")
            noted(self.status, f"{died} and was restarted")
        self._changed()

    # ------------------------------------------------------------------ status

    def status_text(self, frame: Optional[int] = None) -> str:
        """The status as lines (a panel's text): `frame` is the one the host shows."""
        status, shown = self._status(frame)
        return status_text(status, frame if status.total else None, shown)

    def status_line(self) -> str:
        """The status in one line (a label)."""
        return status_line(self._status(None)[0])

    def fraction(self) -> Optional[float]:
        """How far the running computation is, 0..1 (None before any progress)."""
        with self.lock:
            done, todo = self.status.done, self.status.todo
        return min(float(done) / todo, 1.0) if todo else None

    def _status(self, frame: Optional[int]) -> Tuple[Status, bool]:
        with self.lock:
            status = Status(**vars(self.status))
            status.cached = len(self.valid)
            return status, frame in self.valid

    @contextlib.contextmanager
    def _reported(self) -> Iterator[None]:
        """A blocking call: an engine error in the block becomes the last error and goes on
        up, both in the host's words (`status.for_host`); however it ends, no working text
        of its own stays shown ("computing: frame 1003 (1 of 1)", "loading model")."""
        try:
            yield
        except EngineError as error:
            message = for_host(error_text(error))
            self.fail(message)
            if message == error.message:
                raise
            raise type(error)(message, error.code, error.traceback) from error
        finally:
            self._settle()

    def _settle(self) -> None:
        """Nothing of a blocking call is in flight any more: its working text goes (a running
        analysis keeps its progress, and a playhead's request says its own again)."""
        with self.lock:
            if self._analyses:
                return
            self.status.working = ""
        self._changed()

    def fail(self, message: str) -> None:
        """Show `message` as the last error (nothing is being computed any more)."""
        with self.lock:
            self.status.last_error, self.status.working = for_host(message), ""
        self._changed()

    def _changed(self) -> None:
        self.hub.changed(self)

    def analysis_ended(self, run: Analysis) -> None:
        """An analysis ended: the status says how, and the valid frames are read again."""
        with self.lock:
            self._analyses = max(0, self._analyses - 1)
            self.status.working = ""
            if run.error:
                self.status.last_error = for_host(run.error)
            else:
                if run.result and not run.result.get("cancelled"):
                    self.status.last_error = ""
                    self.status.done = self.status.todo = run.total
                noted(self.status, run.summary())
        self.sync()
