"""Nuke callbacks that keep VRMBG nodes working across creation, loading, edits and renders.

Registered once per Nuke process by init.py, with node class checks, so a saved script, a
pasted or undone node, and a farm render (`nuke -x`) all find their node's behaviour again.
"""

from __future__ import annotations

from typing import Any, Optional

import nuke

from . import graph, keys, knobs, pixels_in, upstream
from .controller import HUB, all_vrmbg_nodes, controller_for, forget, is_vrmbg, new_id
from .plugin.paths import adopt_unsaved_cache, host_cache_root

# knobs whose change decides nothing about the engine (no re-open, no refresh of the matte)
_QUIET_KNOBS = {knobs.STATUS, knobs.FRAME_RANGE, "xpos", "ypos", "selected", "label", "name",
                "hidePanel", "tile_color"}


def register() -> None:
    """Add the callbacks (Nuke ignores a callback added twice, so this may run again)."""
    nuke.addOnCreate(on_create, nodeClass="Group")
    nuke.addOnScriptLoad(on_script_load)
    nuke.addOnScriptSave(on_script_save)
    nuke.addOnDestroy(on_destroy, nodeClass="Group")
    nuke.addKnobChanged(on_knob_changed, nodeClass="Group")
    nuke.addKnobChanged(on_read_changed, nodeClass="Read")
    nuke.addUpdateUI(on_update_ui, nodeClass="Group")
    nuke.addAutolabel(autolabel, nodeClass="Group")
    nuke.addBeforeFrameRender(on_before_frame_render)


def bind(node: Any) -> None:
    """(Re)attach a VRMBG node: unique id, output wiring, black until mattes are known valid.
    Starts no engine: that waits until the artist views, edits or renders the node."""
    controller = controller_for(node)
    knobs.add_keyframe_knobs(node)  # a node saved by an older version gets what it lacks
    graph.add_missing(node)
    _rewire(node)
    graph.hide_mattes(node)
    controller.forget_shown()
    controller.refresh()


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


def _bind_by_id(node_id: str) -> None:
    for node in all_vrmbg_nodes():
        if node[knobs.ID_KNOB].value() == node_id and node.node(graph.COPY) is not None:
            bind(node)


def on_create(node: Any = None) -> None:
    """A node appears (created, loaded, pasted, undone): give copies their own id; bind it
    once its inner nodes exist (a script load or paste makes them after the Group's onCreate:
    the load binds every node in onScriptLoad, a paste soon after on the main thread)."""
    node = node or nuke.thisNode()
    if not is_vrmbg(node):
        return
    node_id = node[knobs.ID_KNOB].value()
    if node_id and any(other is not node and other[knobs.ID_KNOB].value() == node_id
                       for other in all_vrmbg_nodes()):
        node_id = new_id()
        node[knobs.ID_KNOB].setValue(node_id)  # a pasted copy: its own engine session
    if node.node(graph.COPY) is not None:
        bind(node)
    elif nuke.GUI:
        nuke.executeInMainThread(_bind_by_id, (node_id,))


def on_script_load() -> None:
    """After a script loads: bind every VRMBG node (inside groups too)."""
    for node in all_vrmbg_nodes():
        bind(node)


def on_script_save() -> None:
    """A script saved for the first time: the frames computed in the user cache move beside
    it (its new default cache), so nothing is computed again."""
    user_root, saved_root = host_cache_root("", ""), host_cache_root("", pixels_in.script_file())
    own = [n for n in all_vrmbg_nodes() if not n["cache_dir"].value().strip()]
    if own:
        folders = HUB.chain_folders(user_root) + [
            f(n, n[knobs.ID_KNOB].value()) for n in own for f in (pixels_in.input_folder,
                                                                   keys.folder)]
        adopt_unsaved_cache(user_root, saved_root, folders)


def on_destroy() -> None:
    """A VRMBG node is deleted: close its engine session."""
    node = nuke.thisNode()
    if is_vrmbg(node):
        forget(node[knobs.ID_KNOB].value())


def on_knob_changed() -> None:
    """A VRMBG node's panel opened, or a knob or input changed (in Nuke 13 to 16 this runs
    only while its panel is open; updateUI notices the rest)."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    if not is_vrmbg(node) or knob is None or knob.name() in _QUIET_KNOBS:
        return
    name = knob.name()
    controller_for(node).engaged = True
    if name in (knobs.MATTE_LAYER, "output_type"):
        _rewire(node)
        return
    if name in ("showPanel", "inputChange", knobs.AUTO, knobs.KEY_LIST) or \
            knobs.is_schema_knob(name):
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
    """What the node asks may have changed: black at once until the engine answers."""
    controller = controller_for(node)
    controller.check(node)
    controller.refresh()
    controller.follow(node)


def on_update_ui() -> None:
    """The frame or the graph changed: hide stale mattes; a following node asks for the
    current frame."""
    node: Any = nuke.thisNode()
    if is_vrmbg(node) and node.node(graph.COPY) is not None:
        controller = controller_for(node)
        controller.check(node)
        controller.follow(node)


def autolabel() -> Optional[str]:
    """The DAG text of a VRMBG node with an error: its name, label and the error."""
    node = nuke.thisNode()
    if not is_vrmbg(node):
        return None
    error = controller_for(node).error_label()
    if not error:
        return None
    label = node["label"].value()
    return "\n".join(t for t in (node.name(), label, error) if t)


def on_before_frame_render() -> None:
    """Before a Write renders a frame: make every VRMBG matte it uses exact (or fail). For a
    VRMBG node's own input or key Write, those above that node's inputs (a chain of VRMBG
    nodes: the input rendered for the lower one holds the upper one's exact matte)."""
    write = nuke.thisNode()
    parent = write.parent()
    own = parent.fullName() if parent is not None and is_vrmbg(parent) else ""
    for node, frame in upstream.mattes_for(write, int(nuke.frame())):
        if node.fullName() == own:
            continue
        controller = controller_for(node)
        controller.engaged = True
        controller.ensure_for_render(node, frame)
