"""Analyse: compute a matte's whole shot in the background, with progress, never blocking.

The run itself (open the session, ensure every frame, cancel, its summary) is the host
session's `Analysis`; `AnalysisDriver` turns timer and Esc events into status-bar and
progress updates; the modal operator only forwards its events to the driver. From a script
or a background Blender the operator runs to the end and returns (there is no event loop to
drive it).
"""

from __future__ import annotations

import bpy

from . import compositor, engine, node_group
from .operators import MatteOperator

TIMER_SECONDS = 0.2


def start(tree: bpy.types.NodeTree):
    """Analyse the matte's shot (its first to last frame) in the background."""
    engine.write_keys(tree)
    return engine.session_of(tree).analyse("%d-%d" % (tree.vrmbg.first, tree.vrmbg.last))


class AnalysisDriver:
    """What the modal operator does with each event: progress out, Esc in."""

    def __init__(self, context, tree: bpy.types.NodeTree) -> None:
        self.name = tree.name
        self.analysis = start(tree)
        self._window_manager = context.window_manager
        self._window_manager.progress_begin(0, 100)

    def step(self, context, event_type: str) -> str:
        """Handle one event; returns 'RUNNING_MODAL', 'PASS_THROUGH', 'FINISHED' or 'CANCELLED'."""
        analysis = self.analysis
        if event_type == "ESC":
            analysis.cancel()
            return "RUNNING_MODAL"
        if event_type != "TIMER":
            return "PASS_THROUGH"
        self._show(context, self.status_text())
        if not analysis.finished:
            return "RUNNING_MODAL"
        self.end(context)
        return "FINISHED" if analysis.result and not analysis.result.get("cancelled") \
            else "CANCELLED"

    def status_text(self) -> str:
        """The status bar's line: the matte's name, then how the run goes."""
        if self.analysis.finished:
            return "%s: %s" % (self.name, self.analysis.summary())
        line = engine.status_line(bpy.data.node_groups.get(self.name))
        return "%s: %s  (Esc cancels)" % (self.name, line)

    def _show(self, context, text: str) -> None:
        self._window_manager.progress_update(int(self.analysis.fraction * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(text)
        if context.area is not None:
            context.area.tag_redraw()

    def end(self, context) -> None:
        """Close the progress display and show the last frames computed."""
        self._window_manager.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        tree = bpy.data.node_groups.get(self.name)
        if tree is not None:
            node_group.reload_matte(tree)


class VRMBG_OT_analyse(MatteOperator, bpy.types.Operator):
    """Compute the matte of every frame of the shot in the background (Esc cancels)"""

    bl_idname = "vrmbg.analyse"
    bl_label = "Analyse"

    def invoke(self, context, event):
        try:
            self._driver = AnalysisDriver(context, compositor.active_matte(context.scene))
        except Exception as error:
            self.report({"ERROR"}, "VRMBG: " + engine.engine_error_text(error))
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(TIMER_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        outcome = self._driver.step(context, event.type)
        if outcome in ("FINISHED", "CANCELLED"):
            context.window_manager.event_timer_remove(self._timer)
            self.report({"INFO"}, "VRMBG: " + self._driver.analysis.summary())
        return {outcome}

    def execute(self, context):
        tree = compositor.active_matte(context.scene)
        try:
            analysis = start(tree)
            analysis.wait()
        except Exception as error:
            self.report({"ERROR"}, "VRMBG: " + engine.engine_error_text(error))
            return {"CANCELLED"}
        engine.drain_main_thread()  # a session opened meanwhile is applied there
        node_group.reload_matte(tree)
        if analysis.error:
            self.report({"ERROR"}, "VRMBG: " + analysis.error)
            return {"CANCELLED"}
        return {"FINISHED"}


classes = (VRMBG_OT_analyse,)
