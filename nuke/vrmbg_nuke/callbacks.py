"""Nuke callbacks that keep VRMBG nodes working across creation, loading, edits and renders.

Registered once per Nuke process by init.py, with node class checks, so a saved script, a
pasted or undone node, and a farm render (`nuke -x`) all find their node's behaviour again.
"""

from __future__ import annotations

from typing import Any, List, Set

import nuke

from . import graph, knobs
from .controller import all_vrmbg_nodes, controller_for, forget, is_vrmbg, new_id

# knobs whose change decides nothing about the engine (no re-open, no refresh of the matte)
_QUIET_KNOBS = {knobs.STATUS, knobs.FRAME_RANGE, "xpos", "ypos", "selected", "label", "name",
                "showPanel", "hidePanel"}


def register() -> None:
    """Add the callbacks (Nuke ignores a callback added twice, so this may run again)."""
    nuke.addOnCreate(on_create, nodeClass="Group")
    nuke.addOnScriptLoad(on_script_load)
    nuke.addOnDestroy(on_destroy, nodeClass="Group")
    nuke.addKnobChanged(on_knob_changed, nodeClass="Group")
    nuke.addKnobChanged(on_read_changed, nodeClass="Read")
    nuke.addUpdateUI(on_update_ui, nodeClass="Group")
    nuke.addBeforeRender(on_before_render)
    nuke.addBeforeFrameRender(on_before_frame_render)


def bind(node: Any) -> None:
    """(Re)attach a VRMBG node: unique id, output wiring, black until mattes are known valid."""
    controller = controller_for(node)
    _rewire(node)
    graph.hide_mattes(node)
    controller.forget_shown()
    controller.refresh()
    if nuke.GUI and node[knobs.AUTO].value():
        nuke.executeInMainThread(_follow_by_id, (controller.node_id,))


def _rewire(node: Any) -> None:
    """Apply the output knobs; a bad layer name goes to the status line."""
    controller = controller_for(node)
    status = controller.matte.status
    try:
        graph.apply_output(node)
    except ValueError as error:
        status.last_error = str(error)
    else:
        if status.last_error.startswith("matte layer"):
            status.last_error = ""
    controller.refresh()


def _follow_by_id(node_id: str) -> None:
    for node in all_vrmbg_nodes():
        if node[knobs.ID_KNOB].value() == node_id:
            controller_for(node).follow(node)


def on_create(node: Any = None) -> None:
    """A node appears (created, loaded, pasted, undone): give copies their own id, bind."""
    node = node or nuke.thisNode()
    if not is_vrmbg(node):
        return
    node_id = node[knobs.ID_KNOB].value()
    if node_id and any(other is not node and other[knobs.ID_KNOB].value() == node_id
                       for other in all_vrmbg_nodes()):
        node[knobs.ID_KNOB].setValue(new_id())  # a pasted copy: its own engine session
    bind(node)


def on_script_load() -> None:
    """After a script loads: bind every VRMBG node (inside groups too)."""
    for node in all_vrmbg_nodes():
        bind(node)


def on_destroy() -> None:
    """A VRMBG node is deleted: close its engine session."""
    node = nuke.thisNode()
    if is_vrmbg(node):
        forget(node[knobs.ID_KNOB].value())


def on_knob_changed() -> None:
    """A VRMBG node's knob or input changed: rewire the output or follow the new settings."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    if not is_vrmbg(node) or knob is None or knob.name() in _QUIET_KNOBS:
        return
    name = knob.name()
    if name in (knobs.MATTE_LAYER, "output_type"):
        _rewire(node)
        return
    if name == "inputChange" or knobs.is_schema_knob(name) or name == knobs.AUTO:
        _follow_change(node)


def on_read_changed() -> None:
    """A Read feeding VRMBG nodes changed (file, colour space, range): they follow it."""
    read = nuke.thisNode()
    knob = nuke.thisKnob()
    if knob is None or knob.name() in _QUIET_KNOBS:
        return
    for node in read.dependent(nuke.INPUTS, False):
        if is_vrmbg(node):
            _follow_change(node)


def _follow_change(node: Any) -> None:
    """What the node asks changed: black at once until the engine answers, then follow."""
    controller = controller_for(node)
    try:
        controller.prepare(node)
    except Exception:
        pass  # prepare put the reason on the status line
    controller.refresh()
    controller.follow(node)


def on_update_ui() -> None:
    """The frame (or the panel) changed: a following node asks for the current frame."""
    node = nuke.thisNode()
    if is_vrmbg(node):
        controller_for(node).follow(node)


def _vrmbg_upstream(node: Any, seen: Set[int]) -> List[Any]:
    """VRMBG nodes feeding `node` (through other groups' outputs too)."""
    found: List[Any] = []
    for upstream in node.dependencies(nuke.INPUTS):
        if id(upstream) in seen:
            continue
        seen.add(id(upstream))
        if is_vrmbg(upstream):
            found.append(upstream)
        elif upstream.Class() == "Group" and upstream.output() is not None:
            found.extend(_vrmbg_upstream(upstream.output(), seen))
        found.extend(_vrmbg_upstream(upstream, seen))
    return found


def _is_internal(write: Any) -> bool:
    parent = write.parent()
    return parent is not None and is_vrmbg(parent)


def on_before_render() -> None:
    """A render starts: the VRMBG nodes it uses render their input afresh when they need it."""
    write = nuke.thisNode()
    if _is_internal(write):
        return
    for node in _vrmbg_upstream(write, set()):
        controller_for(node).rendered.clear()


def on_before_frame_render() -> None:
    """Before a Write renders a frame: make every VRMBG matte it uses exact (or fail)."""
    write = nuke.thisNode()
    if _is_internal(write):
        return
    frame = nuke.frame()
    for node in reversed(_vrmbg_upstream(write, set())):  # the furthest upstream first
        controller_for(node).ensure_for_render(node, frame)
