"""The add-on's side of the engine: one client, a matte session per node group, the main thread.

Blender never imports torch: the engine runs in its own Python as a `vrmbg worker`, reached
through `plugin.client`. What a matte needs (its session, valid frames, progress, status) is
`plugin.host_session`; here a matte's properties are read into what its session asks, and
what the session learns on the client's reader thread reaches Blender data on the main
thread through `post` (`plugin.main_thread`, drained by a `bpy.app.timers` timer).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import threading

import bpy

from . import keys, node_group, preferences, properties
from .plugin import client as engine_client
from .plugin import host_colour, paths
from .plugin.host_session import HostSession, new_owner_id
from .plugin.main_thread import MainThreadQueue
from .plugin.requests import EngineError, error_text
from .plugin.session_hub import SessionHub
from .plugin.settings import Settings
from .plugin.status import for_host

_client: engine_client.EngineClient | None = None
_client_python = ""
MAIN_THREAD = MainThreadQueue()
post = MAIN_THREAD.post  # run an action on Blender's main thread (from any thread)
new_uid = new_owner_id  # a fresh identifier for a new matte


def engine_error_text(error: BaseException) -> str:
    """One line for an engine failure, in the add-on's words (an offline farm gets the fix)."""
    return for_host(error_text(error))


def client() -> engine_client.EngineClient:
    """The engine client (started lazily; a new one when the Engine Python preference changes;
    another thread gets the current one: only the main thread reads Blender's data)."""
    global _client, _client_python
    if _client is not None and threading.current_thread() is not threading.main_thread():
        return _client
    prefs = preferences.get()
    python = bpy.path.abspath(prefs.engine_python) if prefs.engine_python else ""
    allow = bool(prefs.allow_remote_code)  # the person's own preference, never the .blend's
    if _client is not None and (python, allow) != (_client_python, _client.allow_remote_code):
        shutdown()
    if _client is None:
        _client = engine_client.EngineClient(python=python, allow_remote_code=allow)
        _client_python = python
    return _client


def running() -> bool:
    """True while an engine worker runs (Stop and Release GPU never start one)."""
    return _client is not None and _client.running


def shutdown() -> None:
    """Stop the worker (add-on disabled, Blender quitting); sessions reopen on the next use."""
    global _client
    if _client is not None:
        _client.shutdown()
    _client = None
    HUB.forget_all()


def _opened(session: HostSession, answer: dict) -> None:
    post(lambda: _apply_if_current(session.owner, answer))


HUB = SessionHub(lambda: client(), on_change=lambda _session: post(_redraw), on_opened=_opened)
atexit.register(shutdown)


# --- a matte's session ----------------------------------------------------------------------

def owner_of(tree: bpy.types.NodeTree) -> str:
    """Whose session a matte is: its uid, told apart from a duplicated group's (same uid)."""
    return "%s-%s" % (tree.vrmbg.uid, hashlib.sha256(tree.name.encode("utf-8")).hexdigest()[:4])


def session_of(tree: bpy.types.NodeTree) -> HostSession:
    """The matte's session, asked for the tree's plate and settings now (a change is a new
    chain); ValueError for a plate colour space Blender's config does not know."""
    session = HUB.session(owner_of(tree))
    session.ask(plate_input(tree), engine_settings(tree), keys.digest(key_folder(tree)))
    return session


def engine_settings(tree: bpy.types.NodeTree) -> Settings:
    """The settings the engine gets for a matte (cache folder and plate colour resolved)."""
    settings = properties.settings_of(tree.vrmbg)
    settings = settings.replace(cache_dir=cache_folder(settings.cache_dir))
    if not settings.keyframes:  # a typed path wins; else always the matte's own folder, so
        # its chain stays the same when the first keyframe is set (recomputed from it only)
        settings = settings.replace(keyframes=keys.pattern(key_folder(tree)))
    return settings.replace(**plate_colour(tree, settings))


def key_folder(tree: bpy.types.NodeTree) -> str:
    """Where the matte's key files go: `blender-keys/<matte>` in its cache folder."""
    return os.path.join(cache_folder(tree.vrmbg.cache_dir), paths.BLENDER_KEYS_FOLDER,
                        owner_of(tree))


def write_keys(tree: bpy.types.NodeTree) -> None:
    """Write the matte's stale key files (never inside a render); ValueError or OSError says
    why not, and is the status's last error."""
    if tree.vrmbg.is_matte and not tree.vrmbg.keyframes:
        try:
            keys.write(tree, key_folder(tree))
        except (ValueError, OSError) as error:
            HUB.session(owner_of(tree)).fail("keyframes: %s" % error)
            raise


def plate_colour(tree: bpy.types.NodeTree, settings: Settings) -> dict:
    """The engine's `ocio` and `input_colorspace` for a matte's plate.

    An OCIO config set on the matte is taken as it is. Otherwise the engine reads the plate as
    Blender shows it: in Blender's own config (or `$OCIO`), in the plate image's colour space
    (or the matte's Input colour space when set). Raises ValueError for an unknown space.
    """
    if settings.ocio:
        return {}
    image = node_group.plate_image(tree)
    space = settings.input_colorspace or (image.colorspace_settings.name if image else "")
    return dict(_blender_colour(space, os.environ.get("OCIO", "")))


@functools.lru_cache(maxsize=32)
def _blender_colour(space: str, ocio_variable: str) -> tuple:
    settings = host_colour.blender_colour_settings(
        space, resource_local=bpy.utils.resource_path("LOCAL"),
        environ={"OCIO": ocio_variable} if ocio_variable else {})
    return tuple(sorted(settings.items()))


def cache_folder(setting: str) -> str:
    """Absolute cache folder (`paths.host_cache_root`): the matte's setting, else the
    preference (a '//' one only in a saved .blend), else $VRMBG_CACHE, else `vrmbg-cache`
    beside the .blend, else the user cache for a file never saved."""
    folder = setting or preferences.get().cache_folder
    if folder.startswith("//") and not bpy.data.filepath:
        folder = ""
    return paths.host_cache_root(bpy.path.abspath(folder) if folder else "", bpy.data.filepath)


def adopt_unsaved(trees: list) -> None:
    """A file was saved for the first time: its mattes' frames move from the user cache to
    the cache of the saved file (nothing is computed again); the mattes then open there."""
    for tree in trees:
        session = HUB.session(owner_of(tree))
        if session.cache_root and session.chain_folder:
            paths.adopt_unsaved_cache(session.cache_root,
                                      cache_folder(tree.vrmbg.cache_dir), [session.chain_folder])
        settings_changed(tree)


def plate_input(tree: bpy.types.NodeTree) -> str:
    """The plate pattern or movie the engine reads for a matte."""
    return bpy.path.abspath(tree.vrmbg.plate)


def is_open(tree: bpy.types.NodeTree) -> bool:
    """True when this matte's session is open in the running worker."""
    try:
        return session_of(tree).is_open
    except ValueError:  # the plate's colour space is unknown: nothing can be open
        return False


def open_session(tree: bpy.types.NodeTree, timeout: float | None = None) -> dict:
    """Open (blocking) the matte's session and point the matte node at its frames."""
    opened = session_of(tree).open(timeout)
    apply_opened(tree, opened)
    return opened


def apply_opened(tree: bpy.types.NodeTree, opened: dict) -> None:
    """Take the shot's frames and matte sequence from the engine's `opened` answer."""
    first, last = int(opened["first"]), int(opened["last"])
    if (tree.vrmbg.first, tree.vrmbg.last) != (first, last):
        node_group.set_frames(tree, first, last)
    node_group.set_matte_pattern(tree, opened["matte_pattern"])


def _apply_if_current(owner: str, opened: dict) -> None:
    """A session opened in the background: apply it unless the matte's settings moved on
    (or a blocking open applied it already)."""
    shown = (int(opened["first"]), int(opened["last"]), opened["matte_pattern"])
    for tree in bpy.data.node_groups:
        if tree.vrmbg.is_matte and owner_of(tree) == owner and \
                (tree.vrmbg.first, tree.vrmbg.last, tree.vrmbg.matte_pattern) != shown:
            session = session_of(tree)
            if session.is_open and session.session == opened.get("session"):
                apply_opened(tree, opened)


def settings_changed(tree: bpy.types.NodeTree) -> None:
    """A matte's setting changed: its frames come from a new chain once the session reopens
    (its key files written first)."""
    try:
        write_keys(tree)
    except (ValueError, OSError):
        pass  # the panel's status line says why
    if tree.vrmbg.is_matte and tree.vrmbg.auto and not bpy.app.background and _client:
        try:
            session_of(tree).open_async()
        except (ValueError, EngineError):
            pass  # the panel's status line says why


def status_line(tree: bpy.types.NodeTree | None) -> str:
    """What the panel says about a matte."""
    if tree is None:
        return "No VRMBG matte in this compositor"
    listed = "" if tree.vrmbg.keyframes else tree.vrmbg.key_frames.strip()
    try:
        return session_of(tree).status_line() + ("; keyframes " + listed if listed else "")
    except ValueError as error:
        return "Error: %s" % error


# --- main thread ----------------------------------------------------------------------------

def drain_main_thread() -> float:
    """Timer body: run what other threads posted. Returns the next interval."""
    MAIN_THREAD.drain()
    return 0.1


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "NODE_EDITOR":
                area.tag_redraw()
