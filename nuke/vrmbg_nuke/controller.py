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

import hashlib
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import nuke

from . import graph, keys, knobs, pixels_in, upstream
from .plugin import client as engine_client
from .plugin.frame_ranges import format_frame_ranges, parse_frame_ranges
from .plugin.host_session import HostSession, new_owner_id
from .plugin.requests import EngineError, error_text
from .plugin.session_hub import SessionHub

POLL_SECONDS = 0.2  # how often a running analysis or render looks at its progress bar's Cancel
# A render fails when the engine has said nothing new for this long (a model download or
# load is reported as progress, so this only ends a hung engine).
RENDER_STALL_SECONDS = float(os.environ.get("VRMBG_RENDER_TIMEOUT", "") or 600.0)
ERROR_TILE = 0xC0202000  # the DAG colour of a node whose last request failed
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


is_vrmbg = upstream.is_vrmbg


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
    """One VRMBG node: its matte session, and what its Read, gate and DAG tile show."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.matte = HUB.session(node_id)
        self.lock = threading.Lock()
        self.rendered: set = set()  # input frames on disk rendered from the graph as it is now
        self.task: Any = None  # the running analysis' or render's nuke.ProgressTask
        self.engaged = False  # the artist used the node this session: following may start it
        self.input_job: Optional[pixels_in.InputRender] = None
        self._prepared: Optional[Tuple[Any, Any]] = None  # (signature, plate or SetupError)
        self._refresh_queued = False
        self._shown: Optional[tuple] = None  # what the matte Read and gate show now
        self.keys = keys.Keys()  # the keyframes (their files, those to render)

    def node(self) -> Any:
        """This controller's node, or None once it is deleted."""
        for node in all_vrmbg_nodes():
            if node[knobs.ID_KNOB].value() == self.node_id:
                return node
        return None

    # -------------------------------------------------------------- what the node asks

    def _signature(self, node: Any) -> Tuple[tuple, str, str]:
        """Everything that decides what the engine is asked for, and the fingerprints of the
        graph above the node's plate (with the script's colour settings: the input is
        rendered in its working space) and keys inputs (knob values, files, frame range)."""
        values = [str(knob.value()) for knob in (node.knob(p.name) for p in knobs.nuke_params())
                  if knob is not None]
        root = nuke.root()
        colour = [str(root[k].value()) for k in ("colorManagement", "OCIO_config",
                                                 "customOCIOConfigPath", "workingSpaceLUT")
                  if root.knob(k) is not None] + [os.environ.get("OCIO", "")]
        source, corrections = graph.plate_source(node), graph.keys_source(node)
        listed = node.knob(knobs.KEY_LIST)
        listed = listed.value() if listed is not None else ""
        values += colour + [pixels_in.script_file(), listed]
        plate = "" if source is None else hashlib.sha256("\n".join(
            [upstream.fingerprint(source)] + colour).encode("utf-8")).hexdigest()[:16]
        return (tuple(values), plate,
                upstream.fingerprint(corrections) if corrections is not None and listed else "")

    def prepare(self, node: Any, fresh: bool = False) -> pixels_in.Plate:
        """The plate for the node's knobs and the graph above it now, asked of its session.

        Worked out again when anything it depends on changed, or when `fresh` (a button
        press: a config file may have been fixed meanwhile). What changed hides the mattes at
        once (nothing cached is shown until the engine says it is valid for the new graph and
        settings). SetupError explains what the node needs.
        """
        signature = self._signature(node)
        if not fresh and self._prepared is not None and self._prepared[0] == signature:
            if isinstance(self._prepared[1], SetupError):
                raise self._prepared[1]
            return self._prepared[1]
        try:
            settings = knobs.read_settings(node)
            settings = settings.replace(cache_dir=pixels_in.cache_root(settings.cache_dir))
            plate = pixels_in.plate_for(node, settings, self.node_id)
            self.keys = keys.Keys() if settings.keyframes else keys.state(
                node, settings.cache_dir, self.node_id, signature[2])  # a typed path wins
        except (ValueError, KeyError) as error:
            self.keys = keys.Keys()
            self.matte.fail(str(error).strip("'\""))
            self._hide_if(self.matte.drop(), node)
            self.refresh()
            problem = SetupError(self.matte.status.last_error)
            self._prepared = (signature, problem)
            raise problem from None
        settings = settings.replace(**{n: v for n, v in plate.settings.items()
                                       if n in PLATE_OWN or not getattr(settings, n)})
        if self.keys.pattern:  # always: a node's first keyframe keeps its chain
            settings = settings.replace(keyframes=self.keys.pattern)
        fingerprint = signature[1]
        changed = self.matte.ask(plate.pattern, settings, plate.first, plate.last,
                                 fingerprint + self.keys.digest)
        self._hide_if(changed, node)
        if self.keys.stale:  # hide the frames from a changed keyframe on
            self.request_refresh()
        if changed and not plate.direct:
            self.rendered = pixels_in.rendered_frames(plate, fingerprint)
        self._prepared = (signature, plate)
        return plate

    def _hide_if(self, changed: bool, node: Any) -> None:
        if changed:
            self.rendered, self.input_job = set(), None
            graph.hide_mattes(node)
            self._shown = None

    def _plate(self) -> Optional[pixels_in.Plate]:
        found = self._prepared[1] if self._prepared is not None else None
        return found if isinstance(found, pixels_in.Plate) else None

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
        plate = self._plate()
        if plate is not None and not plate.direct:  # valid only over input rendered from now
            valid = valid & frozenset(self.rendered)
        if self.keys.stale:  # valid only before a keyframe not rendered since it changed
            valid = frozenset(f for f in valid if f < self.keys.stale[0])
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
        """Rewrite the status line, and colour the node's tile while it has an error."""
        text = self.matte.status_text(nuke.frame())
        if self.keys.frames:
            text += "\nkeyframes: " + format_frame_ranges(self.keys.frames).replace(",", ", ")
        if node[knobs.STATUS].value() != text:
            node[knobs.STATUS].setValue(text)
        tile, failed = node["tile_color"], bool(self.matte.status.last_error)
        if failed and tile.value() == 0:
            tile.setValue(ERROR_TILE)
        elif not failed and tile.value() == ERROR_TILE:
            tile.setValue(0)

    def error_label(self) -> str:
        """The last error, short, for the node's tile in the DAG ("" when none)."""
        error = self.matte.status.last_error
        return f"ERROR: {error[:60]}..." if len(error) > 63 else (f"ERROR: {error}" if error
                                                                   else "")

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

    def _with_input(self, node: Any, plate: pixels_in.Plate, last: int,
                    then: Callable[[], Any]) -> None:
        """Run `then` once the input frames plate.first..last are on disk for the engine
        (rendered in slices with a progress bar when the input is not a Read sequence), and
        the key files too (rendered first, soon on the main thread)."""
        if self.keys.stale:  # after a failed render of them, only a change tries again
            if not self.keys.failed:
                nuke.executeInMainThread(self._keys_then, (last, then))
            return
        if plate.direct or all(f in self.rendered for f in range(plate.first, last + 1)):
            then()
            return
        if self.input_job is None:
            self.input_job = pixels_in.InputRender(self, plate, self._signature(node)[1],
                                                   self.rendered)
        self.input_job.extend(last, then)

    def input_current(self, job: pixels_in.InputRender) -> bool:
        """Whether `job` still renders this node's input for the graph as it is now."""
        node = self.node()
        return node is not None and self.input_job is job and \
            self._signature(node)[1] == job.fingerprint

    def input_failed(self, job: pixels_in.InputRender, why: str) -> None:
        """Rendering the input failed: the status says why; a change or a button press
        tries again (following the playhead does not)."""
        job.failed = True
        self.matte.fail(why)
        self.refresh()

    def _keys_then(self, last: int, then: Callable[[], Any]) -> None:
        node = self.node()
        if node is None or not self.keys.stale:
            return
        if nuke.executing():  # a render is running: after it
            nuke.executeInMainThread(self._keys_then, (last, then))
            return
        plate = self._render_keys(node)
        if plate is not None:
            self.keys.failed = bool(self.keys.stale)  # once per change, whatever happens
            self._with_input(node, plate, last, then)

    def _render_keys(self, node: Any) -> Optional[pixels_in.Plate]:
        """Render the stale key files, delete the unlisted ones and ask the engine again
        (its frames from a changed keyframe on are no longer valid); None when that failed
        (the status says why)."""
        try:
            keys.render(node, self.keys)
            return self.prepare(node, fresh=True)
        except SetupError:
            return None
        except (RuntimeError, OSError, ValueError) as error:
            self.keys.failed = True
            self.matte.fail(f"keyframes: {error}")
            self.refresh()
            return None

    def set_keyframe(self, node: Any, on: bool) -> None:
        """Set (on) or remove the keyframe at the current frame and render its key file."""
        self.engaged = True
        knob = node[knobs.KEY_LIST]
        try:
            frames = set(parse_frame_ranges(knob.value(), empty_ok=True))
        except ValueError:
            self.check(node)  # the status says what is wrong with the list
            return
        (frames.add if on else frames.discard)(nuke.frame())
        knob.setValue(format_frame_ranges(frames))
        try:
            self.prepare(node, fresh=True)
        except SetupError:
            return
        if self._render_keys(node) is not None:
            self.refresh()
            self.follow(node)

    def analyse(self, node: Any, span: str = "", title: str = "VRMBG") -> None:
        """Compute frames in the background with a cancellable progress bar.

        `span` is range text; empty = the node's Analyse range knob, else the input's range.
        """
        self.engaged = True
        try:
            plate = self.prepare(node, fresh=True)
            wanted = parse_frame_ranges(span or node[knobs.FRAME_RANGE].value(), empty_ok=True)
        except SetupError:
            return
        except ValueError as error:
            self.matte.fail(str(error))
            self.refresh()
            return
        wanted = [f for f in (wanted or range(plate.first, plate.last + 1))
                  if plate.first <= f <= plate.last]
        if self.input_job is not None and self.input_job.failed:
            self.input_job = None  # a press tries again
        if not wanted:
            self.matte.fail(f"no frames of the input ({plate.first}-{plate.last}) in the range")
            return
        self._with_input(node, plate, wanted[-1], lambda: in_background(
            self._analyse_job, format_frame_ranges(wanted), title))

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

    def analyse_frame(self, node: Any) -> None:
        """Compute the current frame (and the uncached frames before it)."""
        self.analyse(node, str(nuke.frame()), "VRMBG")

    def stop(self, node: Any) -> None:
        """Stop after the frame in flight (finished frames stay cached)."""
        self.input_job = None
        if self.matte.stop():
            self.refresh()

    def clear_cache(self, node: Any) -> Optional[threading.Thread]:
        """Delete this node's cached frames for its current settings."""
        try:
            self.prepare(node, fresh=True)
        except SetupError:
            return None
        return in_background(self.matte.clear_cache)

    def prune_cache(self, node: Any) -> Optional[threading.Thread]:
        """Delete the shot's frames cached for other settings (what is shown stays)."""
        try:
            self.prepare(node, fresh=True)
        except SetupError:
            return None
        return in_background(self.matte.prune_cache)

    def release_gpu(self, node: Any) -> threading.Thread:
        """Unload the engine's models (GPU memory); they reload on the next request."""
        return in_background(self.matte.release_models)

    def follow(self, node: Any) -> None:
        """Ask for the current frame without waiting (newer frames supersede older requests).
        Only once the artist has used the node in this session: opening a script starts no
        engine until a node is viewed (its panel opened), edited or rendered."""
        if not nuke.GUI or not self.engaged or not node[knobs.AUTO].value():
            return
        try:
            plate = self.prepare(node)
        except SetupError:
            return
        frame = nuke.frame()
        stale = any(k <= frame for k in self.keys.stale)
        if not plate.first <= frame <= plate.last or not (stale or self.matte.needs(frame)):
            self.update_status(node)  # updateUI runs often: no Read reload here
            return
        self._with_input(node, plate, frame, lambda: self._follow_now(frame))

    def _follow_now(self, frame: int) -> None:
        in_background(self.matte.follow, frame)  # starting the engine may take seconds
        self.refresh()

    def check(self, node: Any) -> None:
        """Hide the mattes at once when the graph above or a setting changed (updateUI:
        knobChanged does not run while the panel is closed), without starting the engine."""
        try:
            self.prepare(node)
        except SetupError:
            pass

    # -------------------------------------------------------------- renders (blocking)

    def ensure_for_render(self, node: Any, frame: int) -> str:
        """Make `frame`'s matte exact before Nuke renders it (blocking, with progress, Cancel
        and a timeout in the GUI); RuntimeError with the reason."""
        name = node.fullName()
        try:
            plate = self.prepare(node)
        except SetupError as error:
            raise RuntimeError(f"{name}: {error}") from None
        if not plate.first <= frame <= plate.last:
            raise RuntimeError(f"{name}: frame {frame} is outside its input's frames "
                               f"{plate.first}-{plate.last}")
        missing = [f for f in range(plate.first, frame + 1) if f not in self.rendered]
        if not plate.direct and missing:
            self.matte.fail(f"frames {format_frame_ranges(missing)} of its input "
                            f"{plate.source} are not rendered for the engine since the input "
                            "last changed (Nuke cannot render them during a render): press "
                            "Analyse range before rendering, or feed the node a Read")
            raise RuntimeError(f"{name}: {self.matte.status.last_error}")
        stale = keys.missing(self.keys, frame)
        if stale:
            self.matte.fail(f"keyframe {stale[0]}: its key file is missing or older than the "
                            "keys input (Nuke cannot render it during a render): press Set "
                            "keyframe here at that frame, or Analyse range, before rendering")
            raise RuntimeError(f"{name}: frame {frame}: {self.matte.status.last_error}")
        try:
            path = self._wait_exact(name, frame)
        except EngineError as error:
            raise RuntimeError(f"{name}: frame {frame}: {error_text(error)}") from None
        finally:
            self.refresh()
        return path

    def _wait_exact(self, name: str, frame: int) -> str:
        """`exact_frame` on a worker thread while this one shows progress, honours Cancel and
        fails when the engine says nothing new for RENDER_STALL_SECONDS."""
        box: Dict[str, Any] = {}

        def work() -> None:
            try:
                box["path"] = self.matte.exact_frame(frame)
            except EngineError as error:
                box["error"] = error
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        self.task = nuke.ProgressTask(f"VRMBG: {name} frame {frame}") if nuke.GUI else None
        heard, said = time.monotonic(), None
        try:
            while thread.is_alive():
                thread.join(POLL_SECONDS)
                now, saying = time.monotonic(), self.matte.status_line()
                if saying != said:
                    heard, said = now, saying
                cancelled = self.task is not None and self.task.isCancelled()
                if thread.is_alive() and (cancelled or now - heard > RENDER_STALL_SECONDS):
                    self.matte.stop()
                    why = "cancelled" if cancelled else (
                        f"no word from the engine for {RENDER_STALL_SECONDS:.0f} s "
                        "($VRMBG_RENDER_TIMEOUT)")
                    self.matte.fail(f"frame {frame}: {why}")
                    raise RuntimeError(f"{name}: frame {frame}: {why}")
        finally:
            self.task = None
        if "error" in box:
            raise box["error"]
        return str(box["path"])
