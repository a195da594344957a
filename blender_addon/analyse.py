"""Analyse: compute a matte's whole shot in the background, with progress, never blocking.

`Analysis` follows one run (open the session, ensure every frame, cancel); `AnalysisDriver` turns
timer and Esc events into status-bar and progress updates; the modal operator only forwards its
events to the driver. From a script or a background Blender the operator runs to the end and
returns (there is no event loop to drive it).
"""

from __future__ import annotations

import bpy

from . import compositor, engine, node_group

TIMER_SECONDS = 0.2


class Analysis:
    """One analysis of a matte's shot: opening, computing, then finished or cancelled."""

    def __init__(self, tree: bpy.types.NodeTree) -> None:
        self.name = tree.name
        self.session = engine.session_id(tree)
        self.total = max(tree.vrmbg.last - tree.vrmbg.first + 1, 1)
        self.frames = "%d-%d" % (tree.vrmbg.first, tree.vrmbg.last)
        self.cancelled = False
        self.error = ""
        self.result: dict | None = None
        engine.reset_progress(self.session)
        self._opening = None if engine.is_open(tree) else engine.open_session_async(tree)
        self._ensure = None if self._opening else self._start_ensure()

    def _start_ensure(self):
        return engine.client().ensure(self.session, frames=self.frames)

    @property
    def finished(self) -> bool:
        """True once the run has ended (done, cancelled or failed)."""
        return self.result is not None or bool(self.error)

    @property
    def fraction(self) -> float:
        """How much of the shot is done, 0..1."""
        if self.result is not None and not self.result.get("cancelled"):
            return 1.0
        event = engine.progress(self.session)
        return min(float(event.get("done", 0)) / float(event.get("total") or self.total), 1.0)

    def poll(self) -> None:
        """Advance: start computing once the session is open; note the end of the run."""
        if self._opening is not None and self._opening.done():
            opening, self._opening = self._opening, None
            try:
                opening.wait(0)
            except Exception as error:
                self.error = engine.engine_error_text(error)
                return
            if self.cancelled:
                self.result = {"cancelled": True}
                return
            self._ensure = self._start_ensure()
        if self._ensure is not None and self._ensure.done():
            try:
                self._ended(self._ensure.wait(0))
            except Exception as error:
                self.error = engine.engine_error_text(error)

    def _ended(self, result: dict) -> None:
        self.result = result
        if not result.get("cancelled"):
            engine.mark_complete(self.session, self.total)

    def cancel(self) -> None:
        """Stop after the frame being computed (finished frames stay cached)."""
        self.cancelled = True
        if self._ensure is not None:
            engine.client().cancel(self.session)

    def wait(self) -> None:
        """Block until the run ends (scripts and background Blender)."""
        if self._opening is not None:
            self._opening.wait()
            engine.drain_main_thread()  # the session's matte sequence is applied there
        self.poll()
        if self._ensure is not None and not self.finished:
            try:
                self._ended(self._ensure.wait())
            except Exception as error:
                self.error = engine.engine_error_text(error)

    def summary(self) -> str:
        """One line for the status: the outcome of the run."""
        if self.error:
            return "Error: " + self.error
        if self.result is None:
            return engine.status_line(bpy.data.node_groups.get(self.name))
        if self.result.get("cancelled"):
            return "Cancelled: %d/%d frames done" % (round(self.fraction * self.total), self.total)
        return "Analysed %d frames (%s computed, %s from cache)" % (
            self.total, self.result.get("computed", 0), self.result.get("from_cache", 0))


class AnalysisDriver:
    """What the modal operator does with each event: progress out, Esc in."""

    def __init__(self, context, tree: bpy.types.NodeTree) -> None:
        self.analysis = Analysis(tree)
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
        analysis.poll()
        self._show(context, "VRMBG %s: %s" % (analysis.name, self._line()))
        if not analysis.finished:
            return "RUNNING_MODAL"
        self.end(context)
        return "FINISHED" if analysis.result and not analysis.result.get("cancelled") \
            else "CANCELLED"

    def _line(self) -> str:
        analysis = self.analysis
        if analysis.finished:
            return analysis.summary()
        return "%s  (Esc cancels)" % engine.status_line(bpy.data.node_groups.get(analysis.name))

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
        engine.set_status(self.analysis.session, self.analysis.summary())
        tree = bpy.data.node_groups.get(self.analysis.name)
        if tree is not None:
            node_group.reload_matte(tree)


class VRMBG_OT_analyse(bpy.types.Operator):
    """Compute the matte of every frame of the shot in the background (Esc cancels)"""

    bl_idname = "vrmbg.analyse"
    bl_label = "Analyse"

    @classmethod
    def poll(cls, context):
        if compositor.active_matte(context.scene) is None:
            cls.poll_message_set("Add a VRMBG matte to the compositor first")
            return False
        return True

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
            analysis = Analysis(tree)
            analysis.wait()
        except Exception as error:
            self.report({"ERROR"}, "VRMBG: " + engine.engine_error_text(error))
            return {"CANCELLED"}
        engine.set_status(analysis.session, analysis.summary())
        node_group.reload_matte(tree)
        if analysis.error:
            self.report({"ERROR"}, "VRMBG: " + analysis.error)
            return {"CANCELLED"}
        return {"FINISHED"}


classes = (VRMBG_OT_analyse,)
