"""The add-on's side of the engine: one client, a session per matte, progress and the status line.

Blender never imports torch: the engine runs in its own Python as a `vrmbg worker`, reached
through `plugin.client`. Replies arrive on the client's reader thread; anything that touches
Blender data is handed to the main thread through `post` (drained by a `bpy.app.timers` timer).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import queue
import uuid
from typing import Any, Callable

import bpy

from . import node_group, preferences, properties
from .plugin import client as engine_client
from .plugin import host_colour

_client: engine_client.EngineClient | None = None
_client_python = ""
_opened: dict[str, dict] = {}  # session id -> the engine's `opened` answer
_progress: dict[str, dict] = {}  # session id -> latest progress event
_status: dict[str, str] = {}  # session id -> one line for the panel
_main_thread: "queue.Queue[Callable[[], None]]" = queue.Queue()


def client() -> engine_client.EngineClient:
    """The engine client (started lazily; a new one when the Engine Python preference changes)."""
    global _client, _client_python
    setting = preferences.get().engine_python
    python = bpy.path.abspath(setting) if setting else ""
    if _client is not None and python != _client_python:
        shutdown()
    if _client is None:
        _client = engine_client.EngineClient(python=python)
        _client.add_listener(_on_event)
        _client_python = python
    return _client


def shutdown() -> None:
    """Stop the worker (add-on disabled, Blender quitting); sessions reopen on the next use."""
    global _client
    if _client is not None:
        _client.shutdown()
    _client = None
    _opened.clear()


atexit.register(shutdown)


# --- sessions -------------------------------------------------------------------------------

def new_uid() -> str:
    """A fresh identifier for a new matte."""
    return uuid.uuid4().hex[:12]


def engine_settings(tree: bpy.types.NodeTree) -> dict:
    """The schema settings the engine gets for a matte (cache folder resolved)."""
    settings = properties.settings_of(tree.vrmbg)
    settings["cache_dir"] = cache_folder(settings["cache_dir"])
    settings.update(plate_colour(tree, settings))
    return settings


def plate_colour(tree: bpy.types.NodeTree, settings: dict) -> dict:
    """The engine's `ocio` and `input_colorspace` for a matte's plate.

    An OCIO config set on the matte is taken as it is. Otherwise the engine reads the plate as
    Blender shows it: in Blender's own config (or `$OCIO`), in the plate image's colour space
    (or the matte's Input colour space when set). Raises ValueError for an unknown space.
    """
    if settings["ocio"]:
        return {}
    image = node_group.plate_image(tree)
    space = settings["input_colorspace"] or (image.colorspace_settings.name if image else "")
    return dict(_blender_colour(space, os.environ.get("OCIO", "")))


@functools.lru_cache(maxsize=32)
def _blender_colour(space: str, ocio_variable: str) -> tuple:
    settings = host_colour.blender_colour_settings(
        space, resource_local=bpy.utils.resource_path("LOCAL"),
        environ={"OCIO": ocio_variable} if ocio_variable else {})
    return tuple(sorted(settings.items()))


def cache_folder(setting: str) -> str:
    """Absolute cache folder: the setting, else the preference; '//' needs a saved .blend."""
    folder = setting or preferences.get().cache_folder
    if folder.startswith("//") and not bpy.data.filepath:
        return ""
    return bpy.path.abspath(folder) if folder else ""


def plate_input(tree: bpy.types.NodeTree) -> str:
    """The plate pattern or movie the engine reads for a matte."""
    return bpy.path.abspath(tree.vrmbg.plate)


def session_id(tree: bpy.types.NodeTree) -> str:
    """The engine session of a matte under its current settings (new settings, new session)."""
    text = json.dumps([plate_input(tree), engine_settings(tree)], sort_keys=True)
    return "%s-%s" % (tree.vrmbg.uid, hashlib.sha1(text.encode("utf-8")).hexdigest()[:8])


def is_open(tree: bpy.types.NodeTree) -> bool:
    """True when this matte's session is open in the running worker."""
    try:
        return session_id(tree) in _opened
    except ValueError:  # the plate's colour space is unknown: nothing can be open
        return False


def forget_sessions() -> None:
    """Another .blend was opened: its mattes open their own sessions when next used."""
    _opened.clear()
    _status.clear()
    _progress.clear()


def open_session(tree: bpy.types.NodeTree, timeout: float | None = None) -> dict:
    """Open (blocking) the matte's session and point the matte node at its frames."""
    session = session_id(tree)
    if session not in _opened:
        set_status(session, "Loading model...")
        opened = client().open(plate_input(tree), engine_settings(tree), session=session,
                               timeout=timeout)
        _opened[session] = opened
    apply_opened(tree, _opened[session])
    return _opened[session]


def open_session_async(tree: bpy.types.NodeTree, then: Callable[[dict], None] | None = None):
    """Open the matte's session in the background; `then(opened)` runs on the main thread."""
    session = session_id(tree)
    name = tree.name
    set_status(session, "Loading model...")
    request = client().request("open", input=plate_input(tree), settings=engine_settings(tree),
                               session=session)

    def on_main_thread(event: dict) -> None:
        target = bpy.data.node_groups.get(name)
        if event.get("event") == "error":
            set_status(session, "Error: " + event.get("message", "the engine failed"))
            return
        _opened[session] = event
        if target is not None and is_open(target) and session_id(target) == session:
            apply_opened(target, event)  # not when its settings changed again meanwhile
        if then is not None:
            then(event)

    request.add_done_callback(lambda event: post(lambda: on_main_thread(event)))
    return request


def apply_opened(tree: bpy.types.NodeTree, opened: dict) -> None:
    """Take the shot's frames and matte sequence from the engine's `opened` answer."""
    first, last = int(opened["first"]), int(opened["last"])
    if (tree.vrmbg.first, tree.vrmbg.last) != (first, last):
        node_group.set_frames(tree, first, last)
    node_group.set_matte_pattern(tree, opened["matte_pattern"])
    session = session_id(tree)
    if session not in _status or _status[session].startswith("Loading"):
        set_status(session, "%s of %s frames cached" % (opened.get("cached_count", 0),
                                                          opened.get("total", "?")))


def settings_changed(tree: bpy.types.NodeTree) -> None:
    """A matte's setting changed: its frames come from a new chain once the session reopens."""
    if tree.vrmbg.is_matte and tree.vrmbg.auto and not bpy.app.background and _client:
        try:
            open_session_async(tree)
        except ValueError:
            pass  # an unknown colour space: the panel's status line says so


# --- progress and status --------------------------------------------------------------------

def _on_event(event: dict) -> None:
    # Reader thread: record only; Blender data is touched on the main thread.
    kind = event.get("event")
    session = event.get("session")
    if kind == "progress" and session:
        if event.get("stage") != "loading model":
            _progress[session] = event
        set_status(session, progress_line(event))
    elif kind == "worker_died":
        for name in list(_status):
            _status[name] = "Engine restarted: " + str(event.get("message", ""))
    post(_redraw)


def progress_line(event: dict) -> str:
    """'Loading model...' or 'Computing 12/48 (1.3 s/frame, 45 s left)'."""
    if event.get("stage") == "loading model":
        return "Loading model..."
    line = "Computing %s/%s" % (event.get("done", 0), event.get("total", "?"))
    per_frame, eta = event.get("seconds_per_frame"), event.get("eta_seconds")
    if per_frame:
        line += " (%.1f s/frame" % per_frame
        line += ", %d s left)" % eta if eta is not None else ")"
    return line


def progress(session: str) -> dict:
    """The latest computing progress of a session (empty before any)."""
    return _progress.get(session, {})


def mark_complete(session: str, total: int) -> None:
    """A run over the whole shot ended: show it complete (cached frames send no progress)."""
    _progress[session] = {"event": "progress", "session": session, "done": total,
                          "total": total, "stage": "computing"}


def reset_progress(session: str) -> None:
    """Forget a session's progress (a new run starts from nothing shown)."""
    _progress.pop(session, None)


def set_status(session: str, line: str) -> None:
    """Set the one-line status of a session (shown in the panel)."""
    _status[session] = line


def status_line(tree: bpy.types.NodeTree | None) -> str:
    """What the panel says about a matte."""
    if tree is None:
        return "No VRMBG matte in this compositor"
    try:
        return _status.get(session_id(tree), "Idle")
    except ValueError as error:
        return "Error: %s" % error


# --- main thread ----------------------------------------------------------------------------

def post(action: Callable[[], None]) -> None:
    """Run `action` on Blender's main thread (from any thread)."""
    _main_thread.put(action)


def drain_main_thread() -> float:
    """Timer body: run what other threads posted. Returns the next interval."""
    while True:
        try:
            action = _main_thread.get_nowait()
        except queue.Empty:
            return 0.1
        try:
            action()
        except Exception as error:  # a failed UI update must not stop the timer
            print("VRMBG:", error)


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "NODE_EDITOR":
                area.tag_redraw()


def engine_error_text(error: Any) -> str:
    """One line for an engine failure (an EngineError or anything else)."""
    return getattr(error, "message", "") or str(error) or type(error).__name__
