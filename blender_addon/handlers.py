"""Blender handlers: follow the current frame, make every rendered frame exact, survive reloads.

- frame_change_post: with a matte's "Auto" on, write its stale key files, then ask for the
  shown frame in the background (superseding older asks); the matte reloads on the main
  thread when the frame is ready.
- render_pre: block until the frame being rendered has its exact matte, so `blender -b file.blend
  -a` and farm renders never composite a missing or stale matte. When the engine fails, the
  render stops with the reason: a background render exits with the engine's exit code, an
  interactive one shows the reason (Blender offers no way to stop it from a handler).
- load_post (persistent): the handlers stay installed across File > Open, and a reopened
  .blend's mattes find their sessions again and are unguarded.
- save_pre / save_post (and save_post_fail): a saved matte is guarded (`node_group.guard`: magenta and a line in
  the log in a Blender without the add-on), the open one unguarded again after the save.
"""

from __future__ import annotations

import os
import sys

import bpy
from bpy.app.handlers import persistent

from . import compositor, engine, keys, node_group
from .plugin.frame_ranges import nearest_frame
from .plugin.requests import EngineError

_rendering = False


@persistent
def follow_frame(scene, *_args) -> None:
    """Ask the engine for the matte of the frame now shown (background, superseding)."""
    if _rendering:
        return
    for tree in compositor.matte_trees(scene):
        if tree.vrmbg.auto:
            try:
                engine.write_keys(tree)
            except (ValueError, OSError):
                pass  # the panel's status line says why
            request_frame(tree, scene.frame_current)


def request_frame(tree: bpy.types.NodeTree, scene_frame: int) -> None:
    """Ask for the plate frame shown at `scene_frame` (the nearest frame of the shot) without
    waiting; its matte reloads when it is ready."""
    name = tree.name

    def ready(event: dict) -> None:
        engine.post(lambda: _frame_ready(name, event))
    try:
        engine.session_of(tree).follow(scene_frame, clamp=True, then=ready)
    except (ValueError, EngineError):
        pass  # the panel's status line says why


def _frame_ready(name: str, event: dict) -> None:
    tree = bpy.data.node_groups.get(name)
    if tree is not None and event.get("event") != "error" and not event.get("superseded") \
            and not event.get("cancelled"):
        node_group.reload_matte(tree)


@persistent
def exact_frame(scene, *_args) -> None:
    """Before a frame renders: the exact matte of that frame for every matte in the compositor."""
    global _rendering
    _rendering = True
    for tree in compositor.matte_trees(scene):
        try:
            ensure_exact(tree, scene.frame_current)
        except Exception as error:
            stop_render(tree, scene.frame_current, error)


def ensure_exact(tree: bpy.types.NodeTree, scene_frame: int) -> str:
    """Block until the matte of the frame shown at `scene_frame` is exact; its path. A key
    file it needs that is missing or older than its source stops it (a render writes none)."""
    frame = nearest_frame(scene_frame, tree.vrmbg.first, tree.vrmbg.last)
    missing = [] if tree.vrmbg.keyframes else keys.stale(tree, engine.key_folder(tree), frame)
    if missing:
        raise ValueError("keyframe %d: its key file is missing or older than the key image "
                         "(a render cannot write it): show that frame or press Set keyframe "
                         "here there before rendering" % missing[0])
    engine.open_session(tree)  # here, not on the main-thread queue: a render does not wait
    path = engine.session_of(tree).exact_frame(scene_frame, clamp=True)
    node_group.reload_matte(tree)
    return path


def stop_render(tree: bpy.types.NodeTree, frame: int, error: Exception) -> None:
    """The engine failed on a frame being rendered: never composite a wrong matte."""
    reason = "VRMBG: cannot render frame %d of %s: %s" % (frame, tree.name,
                                                          engine.engine_error_text(error))
    if bpy.app.background:
        sys.stderr.write(reason + "\n")
        sys.stderr.flush()
        sys.stdout.flush()
        engine.shutdown()
        os._exit(getattr(error, "code", 1) or 1)
    print(reason, file=sys.stderr)
    engine.post(lambda: _tell(reason))


def _tell(reason: str) -> None:
    def draw(menu, _context) -> None:
        menu.layout.label(text=reason)

    bpy.context.window_manager.popup_menu(draw, title="VRMBG: the render is wrong", icon="ERROR")


@persistent
def render_finished(*_args) -> None:
    """A render (still or animation) ended or was cancelled: follow frames again."""
    global _rendering
    _rendering = False


def matte_groups() -> list:
    """Every matte node group of the open file (none while Blender restricts its data)."""
    groups = getattr(bpy.data, "node_groups", ())
    return [tree for tree in groups if getattr(tree, "vrmbg", None) and tree.vrmbg.is_matte]


_first_save: list = []  # the mattes of a file being saved for the first time


@persistent
def guard_all(*_args) -> None:
    """Before a save (and when the add-on goes): what renders without the add-on is loud."""
    _first_save[:] = [] if bpy.data.filepath else [tree.name for tree in matte_groups()]
    for tree in matte_groups():
        node_group.guard(tree)


@persistent
def unguard_all(*_args) -> None:
    """After a save (and when the add-on comes): the mattes render their mattes; a file saved
    for the first time keeps the frames its mattes computed."""
    for tree in matte_groups():
        node_group.unguard(tree)
    saved, _first_save[:] = [bpy.data.node_groups.get(name) for name in _first_save], []
    if bpy.data.filepath and saved:
        engine.adopt_unsaved([tree for tree in saved if tree is not None])


@persistent
def file_loaded(*_args) -> None:
    """A .blend was opened: forget the old file's sessions; background renders composite on CPU."""
    engine.HUB.forget_all()
    unguard_all()
    if bpy.app.background:
        for scene in bpy.data.scenes:
            if compositor.matte_trees(scene):
                compositor.configure_headless(scene)


_HANDLERS = (
    ("frame_change_post", follow_frame),
    ("render_pre", exact_frame),
    ("render_complete", render_finished),
    ("render_cancel", render_finished),
    ("load_post", file_loaded),
    ("save_pre", guard_all),
    ("save_post", unguard_all),
    ("save_post_fail", unguard_all),  # a failed save leaves the open file as it was
)


def register() -> None:
    """Install the handlers and the main-thread timer."""
    for name, function in _HANDLERS:
        getattr(bpy.app.handlers, name).append(function)
    bpy.app.timers.register(engine.drain_main_thread, persistent=True)
    unguard_all()


def unregister() -> None:
    """Remove what `register` installed, in reverse; the mattes are guarded again."""
    guard_all()
    if bpy.app.timers.is_registered(engine.drain_main_thread):
        bpy.app.timers.unregister(engine.drain_main_thread)
    for name, function in reversed(_HANDLERS):
        handlers = getattr(bpy.app.handlers, name)
        if function in handlers:
            handlers.remove(function)
