"""One VRMBG node's Nuke side: its knobs and input read into what its matte session asks,
and what the session knows shown in the node.

What a matte needs in any host (its engine session, the frames known valid, following the
playhead, the exact frame for a render, progress and status) is `plugin.host_session`. Here:
Nuke objects are touched on the main thread only (what the session learns on other threads
reaches the node through `nuke.executeInMainThread`); requests that may wait (starting the
engine, analysing a range) run on background threads; a render (`nuke -x` or a Write render
in the GUI) blocks until its frame is exact and fails with the engine's reason when it
cannot be. Every VRMBG node in a Nuke process talks to one shared worker.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import nuke

from . import graph, knobs, pixels_in
from .plugin import client as engine_client
from .plugin.frame_ranges import format_frame_ranges, parse_frame_ranges
from .plugin.host_session import HostSession, new_owner_id
from .plugin.requests import EngineError, error_text
from .plugin.session_hub import SessionHub

POLL_SECONDS = 0.2  # how often a running analysis looks at its progress bar's Cancel
# Settings the plate brings: its own always win, the others fill what the node leaves empty.
PLATE_OWN = ("layer", "part", "content_hash")


class SetupError(Exception):
    """The node cannot ask the engine yet (no input, unknown colour space, bad setting)."""


def get_client() -> Any:
    """The worker client shared by every VRMBG node in this Nuke process."""
    return engine_client.shared_client()


_CONTROLLERS: Dict[str, "NodeController"] = {}
_LOCK = threading.Lock()
_THREADS: List[threading.Thread] = []  # background work still running


def _session_changed(session: HostSession) -> None:
    found = _CONTROLLERS.get(session.owner)
    if found is not None:
        found.on_change()


HUB = SessionHub(lambda: get_client(), on_change=_session_changed)


def in_background(work: Callable[..., Any], *args: Any) -> threading.Thread:
    """Run `work(*args)` on a daemon thread (the engine's errors are already in the status)."""
    def run() -> None:
        try:
            work(*args)
        except EngineError:
            pass
    thread = threading.Thread(target=run, daemon=True)
    with _LOCK:
        _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [thread]
    thread.start()
    return thread


def wait_for_background(timeout: float = 10.0) -> bool:
    """Wait for the nodes' background work to end (before the worker is shut down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _LOCK:
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


new_id = new_owner_id  # a fresh node id (names the node's engine sessions)


def controller_for(node: Any) -> "NodeController":
    """The controller of a VRMBG node (made on first use; the node gets an id if it has none)."""
    knob = node[knobs.ID_KNOB]
    node_id = knob.value()
    if not node_id:
        node_id = new_id()
        knob.setValue(node_id)
    with _LOCK:
        found = _CONTROLLERS.get(node_id)
        if found is None:
            found = _CONTROLLERS[node_id] = NodeController(node_id)
    return found


def forget(node_id: str) -> None:
    """Drop a deleted node's controller and close its engine session."""
    with _LOCK:
        _CONTROLLERS.pop(node_id, None)
    HUB.forget(node_id)


class NodeController:
    """One VRMBG node: its matte session, and what its Read and gate show."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.matte = HUB.session(node_id)
        self.lock = threading.Lock()
        self.rendered: set = set()  # input frames rendered since the input last changed
        self.task: Any = None  # the running analysis' nuke.ProgressTask
        self._prepared: Optional[Tuple[Any, Any]] = None  # (signature, plate or SetupError)
        self._refresh_queued = False
        self._shown: Optional[tuple] = None  # what the matte Read and gate show now

    def node(self) -> Any:
        """This controller's node, or None once it is deleted."""
        for node in all_vrmbg_nodes():
            if node[knobs.ID_KNOB].value() == self.node_id:
                return node
        return None

    # -------------------------------------------------------------- what the node asks

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

    def prepare(self, node: Any, fresh: bool = False) -> pixels_in.Plate:
        """The plate for the node's knobs now, asked of its session.

        Worked out again when a knob it depends on changed, or when `fresh` (a button press:
        a config file may have been fixed meanwhile). What changed hides the mattes at once
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
            self.matte.fail(str(error).strip("'\""))
            self._hide_if(self.matte.drop(), node)
            self.refresh()
            problem = SetupError(self.matte.status.last_error)
            self._prepared = (signature, problem)
            raise problem from None
        settings = settings.replace(**{n: v for n, v in plate.settings.items()
                                       if n in PLATE_OWN or not getattr(settings, n)})
        self._hide_if(self.matte.ask(plate.pattern, settings, plate.first, plate.last), node)
        self._prepared = (signature, plate)
        return plate

    def _hide_if(self, changed: bool, node: Any) -> None:
        if changed:
            self.rendered = set()
            graph.hide_mattes(node)
            self._shown = None

    # -------------------------------------------------------------- showing (main thread)

    def refresh(self) -> None:
        """Show what is known: the matte Read, the gate over valid frames, the status line."""
        with self.lock:
            self._refresh_queued = False
        with self.matte.lock:
            opened = dict(self.matte.opened) if self.matte.is_open else {}
            valid = frozenset(self.matte.valid)
        node = self.node()
        if node is None:
            return
        shown = ((str(opened.get("matte_pattern", "")), int(opened["first"]),
                  int(opened["last"]), valid, bool(nuke.GUI)) if opened else None)
        if shown != self._shown:  # reload the matte Read only when something changed
            if shown is not None:
                graph.show_mattes(node, *shown)
            else:
                graph.hide_mattes(node)
            self._shown = shown
        self.update_status(node)

    def update_status(self, node: Any) -> None:
        """Rewrite the status line (only when its text changes)."""
        text = self.matte.status_text(nuke.frame())
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

    def on_change(self) -> None:
        """The session learnt something (any thread): the progress bar now, the node soon."""
        task, status = self.task, self.matte.status
        if task is not None:
            if status.working:
                task.setMessage(status.working)
            if status.todo:
                task.setProgress(int(100 * status.done / status.todo))
        self.request_refresh()

    # -------------------------------------------------------------- actions (main thread)

    def analyse(self, node: Any, span: str = "", title: str = "VRMBG") -> Optional[threading.Thread]:
        """Compute frames in the background with a cancellable progress bar.

        `span` is range text; empty = the node's Analyse range knob, else the input's range.
        """
        try:
            plate = self.prepare(node, fresh=True)
            wanted = parse_frame_ranges(span or node[knobs.FRAME_RANGE].value(), empty_ok=True)
        except SetupError:
            return None
        except ValueError as error:
            self.matte.fail(str(error))
            self.refresh()
            return None
        wanted = [f for f in (wanted or range(plate.first, plate.last + 1))
                  if plate.first <= f <= plate.last]
        if not wanted:
            self.matte.fail(f"no frames of the input ({plate.first}-{plate.last}) in the range")
            return None
        if not plate.direct:  # the engine reads what the input shows now
            pixels_in.render_input(node, plate, plate.first, wanted[-1])
            self.rendered = set(range(plate.first, wanted[-1] + 1))
        return in_background(self._analyse_job, format_frame_ranges(wanted), title)

    def _analyse_job(self, span: str, title: str) -> None:
        task = nuke.ProgressTask(f"{title}: frames {span}")
        self.task = task
        try:
            task.setMessage("starting the engine")
            analysis = self.matte.analyse(span)
            while not analysis.wait(POLL_SECONDS):
                if task.isCancelled() and not analysis.cancelled:
                    analysis.cancel()
        finally:
            self.task = None
            del task

    def analyse_frame(self, node: Any) -> Optional[threading.Thread]:
        """Compute the current frame (and the uncached frames before it)."""
        return self.analyse(node, str(nuke.frame()), "VRMBG")

    def stop(self, node: Any) -> None:
        """Stop after the frame in flight (finished frames stay cached)."""
        if self.matte.stop():
            self.refresh()

    def clear_cache(self, node: Any) -> Optional[threading.Thread]:
        """Delete this node's cached frames for its current settings."""
        try:
            self.prepare(node, fresh=True)
        except SetupError:
            return None

        def clear() -> None:
            self.matte.clear_cache()
            self.rendered = set()
        return in_background(clear)

    def release_gpu(self, node: Any) -> threading.Thread:
        """Unload the engine's models (GPU memory); they reload on the next request."""
        return in_background(self.matte.release_models)

    def follow(self, node: Any) -> None:
        """Ask for the current frame without waiting (newer frames supersede older requests)."""
        if not nuke.GUI or not node[knobs.AUTO].value():
            return
        try:
            plate = self.prepare(node)
        except SetupError:
            return
        frame = nuke.frame()
        if not plate.first <= frame <= plate.last or not self.matte.needs(frame):
            self.update_status(node)  # updateUI runs often: no Read reload here
            return
        if not plate.direct:
            pixels_in.render_input(node, plate, plate.first, frame, done=self.rendered)
        in_background(self.matte.follow, frame)  # starting the engine may take seconds
        self.refresh()

    # -------------------------------------------------------------- renders (blocking)

    def ensure_for_render(self, node: Any, frame: int) -> str:
        """Make `frame`'s matte exact before Nuke renders it; RuntimeError with the reason."""
        name = node.fullName()
        try:
            plate = self.prepare(node)
        except SetupError as error:
            raise RuntimeError(f"{name}: {error}") from None
        if not plate.first <= frame <= plate.last:
            raise RuntimeError(f"{name}: frame {frame} is outside its input's frames "
                               f"{plate.first}-{plate.last}")
        if not plate.direct:
            pixels_in.render_input(node, plate, plate.first, frame, done=self.rendered)
        try:
            path = self.matte.exact_frame(frame)
        except EngineError as error:
            raise RuntimeError(f"{name}: frame {frame}: {error_text(error)}") from None
        self.refresh()
        return path
