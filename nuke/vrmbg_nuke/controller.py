"""One VRMBG node's link to the engine: its session, valid frames, progress and status.

Nuke objects are touched on the main thread only. Requests that wait (opening a session loads
the model; analysing a range takes minutes) run on a background thread, and what they learn
reaches the node through `nuke.executeInMainThread`. In a render (`nuke -x` or a Write render
in the GUI) the node instead blocks until the frame is exact, and fails the render with the
engine's reason when it cannot be.

Every VRMBG node in a Nuke process talks to one shared worker (`client.shared_client()`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Set, Tuple, Type

import nuke

from . import frames, graph, knobs, pixels_in
from .plugin import client as engine_client
from .status import Status, status_text

POLL_SECONDS = 0.2  # how often a running analysis looks at its progress bar's Cancel


class SetupError(Exception):
    """The node cannot ask the engine yet (no input, unknown colour space, bad setting)."""


def get_client() -> Any:
    """The worker client shared by every VRMBG node in this Nuke process."""
    return engine_client.shared_client()


def engine_error_types() -> Tuple[Type[BaseException], ...]:
    """Exceptions that carry the engine's own reason (EngineError and its family)."""
    return (engine_client.EngineError,)


def engine_message(error: BaseException) -> str:
    """The one-line reason of an engine error (or any exception)."""
    return str(getattr(error, "message", "") or error) or type(error).__name__


# ------------------------------------------------------------------ registry

_CONTROLLERS: Dict[str, "NodeController"] = {}
_BY_SESSION: Dict[str, "NodeController"] = {}
_LISTENING: List[Any] = []  # the client we listen to (one)
_REGISTRY_LOCK = threading.Lock()
_THREADS: List[threading.Thread] = []  # background work still running


def in_background(work: Any, *args: Any) -> threading.Thread:
    """Run `work(*args)` on a daemon thread (kept track of, see `wait_for_background`)."""
    thread = threading.Thread(target=work, args=args, daemon=True)
    with _REGISTRY_LOCK:
        _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [thread]
    thread.start()
    return thread


def wait_for_background(timeout: float = 10.0) -> bool:
    """Wait for the nodes' background work to end (before the worker is shut down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _REGISTRY_LOCK:
            running = [t for t in _THREADS if t.is_alive()]
        if not running:
            return True
        running[0].join(max(0.0, deadline - time.monotonic()))
    return False


def is_vrmbg(node: Any) -> bool:
    """True for a VRMBG node (a Group carrying the node's id knob)."""
    return node is not None and node.Class() == "Group" and node.knob(knobs.ID_KNOB) is not None


def all_vrmbg_nodes() -> List[Any]:
    """Every VRMBG node of the script, inside groups too."""
    return [n for n in nuke.allNodes("Group", group=nuke.root(), recurseGroups=True)
            if is_vrmbg(n)]


def new_id() -> str:
    """A fresh node id (names the node's engine sessions)."""
    return uuid.uuid4().hex[:12]


def controller_for(node: Any) -> "NodeController":
    """The controller of a VRMBG node (made on first use; the node gets an id if it has none)."""
    knob = node[knobs.ID_KNOB]
    node_id = knob.value()
    if not node_id:
        node_id = new_id()
        knob.setValue(node_id)
    with _REGISTRY_LOCK:
        found = _CONTROLLERS.get(node_id)
        if found is None:
            found = _CONTROLLERS[node_id] = NodeController(node_id)
    return found


def forget(node_id: str) -> None:
    """Drop a deleted node's controller and close its engine session."""
    with _REGISTRY_LOCK:
        found = _CONTROLLERS.pop(node_id, None)
    if found is not None:
        found.close_session()


def _route(event: Dict[str, Any]) -> None:
    """Client listener (reader thread): hand each event to the node whose session it names."""
    if event.get("event") == "worker_died":
        with _REGISTRY_LOCK:
            every = list(_CONTROLLERS.values())
        for each in every:
            each.on_worker_died(event)
        return
    with _REGISTRY_LOCK:
        found = _BY_SESSION.get(str(event.get("session") or ""))
    if found is not None:
        found.on_event(event)


def _client() -> Any:
    client = get_client()
    with _REGISTRY_LOCK:
        if not _LISTENING or _LISTENING[0] is not client:
            client.add_listener(_route)
            _LISTENING[:] = [client]
    return client


class NodeController:
    """State of one VRMBG node between the host and the engine."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.lock = threading.RLock()
        self.open_lock = threading.Lock()  # one open at a time (a blocking request)
        self.status = Status()
        self.valid: Set[int] = set()  # frames whose cached matte is valid for `want_key`
        self.rendered: Set[int] = set()  # input frames rendered since the input last changed
        self.want_key = ""  # what the node's knobs ask for now
        self.plan_key = ""  # what the open session serves
        self.session = ""
        self.opened: Dict[str, Any] = {}
        self.task: Any = None  # the running analysis' nuke.ProgressTask
        self.follow_frame: Optional[int] = None
        self._prepared: Optional[Tuple[Any, Any]] = None  # (signature, answer or SetupError)
        self._refresh_queued = False
        self._shown: Optional[tuple] = None  # what the matte Read and gate show now

    # -------------------------------------------------------------- main thread: the node

    def node(self) -> Any:
        """This controller's node, or None once it is deleted."""
        for node in all_vrmbg_nodes():
            if node[knobs.ID_KNOB].value() == self.node_id:
                return node
        return None

    def _signature(self, node: Any) -> Any:
        """Everything that decides what the engine is asked for (cheap to read)."""
        values = [str(knob.value()) for knob in (node.knob(p.name) for p in knobs.nuke_params())
                  if knob is not None]
        source = graph.plate_source(node)
        if source is not None:
            values += [source.name(), source.Class(), str(nuke.filename(source))]
            values += [str(source[k].value()) for k in ("colorspace", "raw", "first", "last",
                                                        "frame", "disable")
                       if source.knob(k) is not None]
        root = nuke.root()
        values += [str(root[k].value()) for k in ("colorManagement", "OCIO_config",
                                                  "customOCIOConfigPath", "workingSpaceLUT")
                   if root.knob(k) is not None]
        return tuple(values)

    def prepare(self, node: Any, fresh: bool = False) -> Tuple[pixels_in.Plate, Dict[str, Any], str]:
        """The plate, engine settings and their key for the node's knobs now.

        Worked out again when a knob it depends on changed, or when `fresh` (a button press:
        a config file may have been fixed meanwhile). A changed key drops the valid frames
        (nothing cached is shown until the engine says it is valid for the new settings).
        SetupError explains what the node needs.
        """
        signature = self._signature(node)
        if not fresh and self._prepared is not None and self._prepared[0] == signature:
            if isinstance(self._prepared[1], SetupError):
                raise self._prepared[1]
            return self._prepared[1]
        try:
            settings = knobs.read_settings(node)
            plate = pixels_in.plate_for(node, settings, self.node_id)
        except (ValueError, KeyError) as error:
            self.status.last_error = str(error).strip("'\"")
            self._adopt("", node)
            self.refresh()
            problem = SetupError(self.status.last_error)
            self._prepared = (signature, problem)
            raise problem from None
        merged = dict(settings)
        for name, value in plate.settings.items():
            if name in ("layer", "part", "content_hash") or not merged.get(name):
                merged[name] = value
        key = json.dumps([plate.pattern, plate.first, plate.last, merged], sort_keys=True,
                         default=str)
        self._prepared = (signature, (plate, merged, key))
        self._adopt(key, node)
        return plate, merged, key

    def _adopt(self, key: str, node: Any) -> None:
        if key == self.want_key:
            return
        with self.lock:
            self.want_key = key
            self.valid = set()
            self.rendered = set()
            self.follow_frame = None
            self.status.cached = 0
        graph.hide_mattes(node)
        self._shown = None

    def refresh(self) -> None:
        """Show what is known: the matte Read, the gate over valid frames, the status line."""
        with self.lock:
            self._refresh_queued = False
            valid = set(self.valid)
            opened = dict(self.opened) if self.plan_key == self.want_key else {}
        node = self.node()
        if node is None:
            return
        shown = ((str(opened.get("matte_pattern", "")), int(opened["first"]),
                  int(opened["last"]), frozenset(valid), bool(nuke.GUI)) if opened else None)
        if shown != self._shown:  # reload the matte Read only when something changed
            if shown is not None:
                graph.show_mattes(node, *shown)
            else:
                graph.hide_mattes(node)
            self._shown = shown
        self.update_status(node)

    def update_status(self, node: Any) -> None:
        """Rewrite the status line (only when its text changes)."""
        with self.lock:
            valid = set(self.valid)
        frame = nuke.frame()
        self.status.frame = frame if self.status.total else None
        self.status.frame_shown = frame in valid
        self.status.cached = len(valid)
        text = status_text(self.status)
        if node[knobs.STATUS].value() != text:
            node[knobs.STATUS].setValue(text)

    def forget_shown(self) -> None:
        """The node's gate was reset (created, loaded, settings changed): show again on refresh."""
        self._shown = None

    def request_refresh(self) -> None:
        """Refresh on the main thread soon (many requests while busy make one refresh)."""
        with self.lock:
            if self._refresh_queued:
                return
            self._refresh_queued = True
        nuke.executeInMainThread(self.refresh)

    def _fail(self, message: str) -> None:
        self.status.last_error = message
        self.status.working = ""
        self.request_refresh()

    # -------------------------------------------------------------- engine sessions (any thread)

    def _open(self, plate: pixels_in.Plate, settings: Dict[str, Any], key: str) -> str:
        """The engine session for `key`, opening it (blocking: loads the model) when needed."""
        with self.open_lock:
            with self.lock:
                if self.session and self.plan_key == key:
                    return self.session
                old = self.session
            client = _client()
            if old:
                self._close_quietly(client, old)
            session = f"{self.node_id}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
            with _REGISTRY_LOCK:
                _BY_SESSION[session] = self
            self.status.working = "opening the shot (loading the model)"
            self.request_refresh()
            opened = client.open(plate.pattern, settings, session=session)
            with self.lock:
                self.session, self.plan_key, self.opened = session, key, dict(opened)
                if key == self.want_key:
                    self.valid = set(frames.parse_frames(str(opened.get("cached", ""))))
                self.status.total = int(opened.get("total", 0))
                self.status.device = str(opened.get("device", ""))
                self.status.precision = str(opened.get("precision", ""))
                self.status.working = ""
                self.status.last_error = ""
            self.request_refresh()
            return session

    def _close_quietly(self, client: Any, session: str) -> None:
        with _REGISTRY_LOCK:
            _BY_SESSION.pop(session, None)
        try:
            client.close(session)
        except Exception:  # the worker may be gone; a closed session is closed
            pass

    def close_session(self) -> None:
        """Close the engine session (the node was deleted)."""
        with self.lock:
            session, self.session, self.plan_key = self.session, "", ""
        if session:
            in_background(self._close_quietly, _client(), session)

    # -------------------------------------------------------------- events (reader thread)

    def on_event(self, event: Dict[str, Any]) -> None:
        """Progress and finished frames from the engine."""
        kind = event.get("event")
        with self.lock:
            current = event.get("session") == self.session and self.plan_key == self.want_key
        if kind == "frame" and current:
            if event.get("exact", True) and event.get("tier", "final") == "final":
                with self.lock:
                    self.valid.add(int(event["frame"]))
            self.request_refresh()
        elif kind == "progress":
            self._progress(event)

    def _progress(self, event: Dict[str, Any]) -> None:
        done, total = int(event.get("done") or 0), int(event.get("total") or 0)
        stage = str(event.get("stage") or "computing")
        if event.get("seconds_per_frame"):
            self.status.seconds_per_frame = float(event["seconds_per_frame"])
        frame = event.get("frame")
        text = stage if frame is None else f"{stage}: frame {frame} ({done} of {total})"
        eta = event.get("eta_seconds")
        if eta:
            text += f", about {float(eta):.0f} s left"
        self.status.working = text
        task = self.task
        if task is not None:
            task.setMessage(text)
            if total:
                task.setProgress(int(100 * done / total))
        self.request_refresh()

    def on_worker_died(self, event: Dict[str, Any]) -> None:
        """The worker stopped; the client restarts it and re-opens the sessions."""
        code = event.get("exit_code", event.get("code", "?"))
        self.status.note = f"the engine stopped (exit code {code}) and was restarted"
        self.request_refresh()

    # -------------------------------------------------------------- actions (main thread)

    def analyse(self, node: Any, span: str = "", title: str = "VRMBG") -> Optional[threading.Thread]:
        """Compute frames in the background with a cancellable progress bar.

        `span` is range text; empty = the node's Analyse range knob, else the input's range.
        """
        try:
            plate, settings, key = self.prepare(node, fresh=True)
            wanted = frames.parse_frames(span or node[knobs.FRAME_RANGE].value())
        except SetupError:
            return None
        except ValueError as error:
            self._fail(str(error))
            self.refresh()
            return None
        wanted = [f for f in (wanted or range(plate.first, plate.last + 1))
                  if plate.first <= f <= plate.last]
        if not wanted:
            self._fail(f"no frames of the input ({plate.first}-{plate.last}) in the range")
            return None
        if not plate.direct:  # the engine reads what the input shows now
            pixels_in.render_input(node, plate, plate.first, wanted[-1])
            self.rendered = set(range(plate.first, wanted[-1] + 1))
        return in_background(self._analyse_job, plate, settings, key,
                             frames.range_text(wanted), title)

    def _analyse_job(self, plate: pixels_in.Plate, settings: Dict[str, Any], key: str,
                     span: str, title: str) -> None:
        task = nuke.ProgressTask(f"{title}: frames {span}")
        self.task = task
        try:
            task.setMessage("starting the engine")
            session = self._open(plate, settings, key)
            client = _client()
            request = client.ensure(session, frames=span)
            cancelled = False
            while True:
                try:
                    answer = request.wait(timeout=POLL_SECONDS)
                    break
                except TimeoutError:
                    if task.isCancelled() and not cancelled:
                        client.cancel(session)
                        cancelled = True
            self.status.working = ("stopped: finished frames are kept"
                                   if answer.get("cancelled") else "")
            if not answer.get("cancelled"):
                self.status.last_error = ""
        except engine_error_types() as error:
            self.status.working = ""
            self.status.last_error = engine_message(error)
        finally:
            self.task = None
            del task
            self._sync_cache()

    def analyse_frame(self, node: Any) -> Optional[threading.Thread]:
        """Compute the current frame (and the uncached frames before it)."""
        return self.analyse(node, str(nuke.frame()), "VRMBG")

    def stop(self, node: Any) -> None:
        """Stop after the frame in flight (finished frames stay cached)."""
        with self.lock:
            session = self.session
        if session:
            _client().cancel(session)
            self.status.working = "stopping after the frame in flight"
            self.refresh()

    def _in_background(self, work: Any, *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                work(*args)
            except engine_error_types() as error:
                self._fail(engine_message(error))
        return in_background(run)

    def clear_cache(self, node: Any) -> Optional[threading.Thread]:
        """Delete this node's cached frames for its current settings."""
        try:
            plate, settings, key = self.prepare(node, fresh=True)
        except SetupError:
            return None

        def clear() -> None:
            session = self._open(plate, settings, key)
            _client().clear(session)
            with self.lock:
                self.valid = set()
                self.rendered = set()
                self.follow_frame = None
            self.status.note = "cache cleared"
            self.request_refresh()
        return self._in_background(clear)

    def release_gpu(self, node: Any) -> threading.Thread:
        """Unload the engine's models (GPU memory); they reload on the next request."""
        def release() -> None:
            answer = _client().release()
            self.status.note = f"released {answer.get('released', 0)} model(s) from memory"
            self.request_refresh()
        return self._in_background(release)

    # -------------------------------------------------------------- following the playhead

    def follow(self, node: Any) -> None:
        """Ask for the current frame without waiting (newer frames supersede older requests)."""
        if not nuke.GUI or not node[knobs.AUTO].value():
            return
        try:
            plate, settings, key = self.prepare(node)
        except SetupError:
            return
        frame = nuke.frame()
        with self.lock:
            same = frame == self.follow_frame and key == self.plan_key
            known = frame in self.valid and key == self.plan_key
        if same or not plate.first <= frame <= plate.last:
            self.update_status(node)  # updateUI runs often: no Read reload here
            return
        self.follow_frame = frame
        if known:
            self.update_status(node)
            return
        if not plate.direct:
            pixels_in.render_input(node, plate, plate.first, frame, done=self.rendered)
        self._in_background(self._follow_job, plate, settings, key, frame)
        self.refresh()

    def _follow_job(self, plate: pixels_in.Plate, settings: Dict[str, Any], key: str,
                    frame: int) -> None:
        session = self._open(plate, settings, key)
        request = _client().ensure(session, frame=frame, supersede=True)
        request.add_done_callback(self._follow_done)

    def _follow_done(self, answer: Dict[str, Any]) -> None:
        """Reader thread: never wait here; the cache is read again on a thread of its own."""
        if answer.get("event") == "error":
            self.status.last_error = str(answer.get("message", "the engine failed"))
        elif not answer.get("superseded"):
            self.status.working = ""
        in_background(self._sync_cache)

    def _sync_cache(self) -> None:
        """Take the engine's word for which frames are valid (frames computed on the way to a
        requested frame are cached too), then refresh."""
        with self.lock:
            session, key = self.session, self.plan_key
        if session and key == self.want_key:
            try:
                info = _client().cache_info(session)
            except engine_error_types() as error:
                self.status.last_error = engine_message(error)
            else:
                with self.lock:
                    if session == self.session and key == self.want_key:
                        self.valid = set(frames.parse_frames(str(info.get("cached", ""))))
        self.request_refresh()

    # -------------------------------------------------------------- renders (blocking)

    def ensure_for_render(self, node: Any, frame: int) -> str:
        """Make `frame`'s matte exact before Nuke renders it; RuntimeError with the reason."""
        name = node.fullName()
        try:
            plate, settings, key = self.prepare(node)
        except SetupError as error:
            raise RuntimeError(f"{name}: {error}") from None
        if not plate.first <= frame <= plate.last:
            raise RuntimeError(f"{name}: frame {frame} is outside its input's frames "
                               f"{plate.first}-{plate.last}")
        if not plate.direct:
            pixels_in.render_input(node, plate, plate.first, frame, done=self.rendered)
        try:
            session = self._open(plate, settings, key)
            path = _client().ensure_frame(session, frame)
        except engine_error_types() as error:
            self.status.last_error = engine_message(error)
            raise RuntimeError(f"{name}: frame {frame}: {engine_message(error)}") from None
        with self.lock:
            self.valid.add(frame)
        self.refresh()
        return path
