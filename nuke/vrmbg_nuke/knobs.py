"""The node's knobs: one per schema setting Nuke shows, plus the node's own controls.

Knob name = schema name = CLI flag name (`input_colorspace` is `--input-colorspace`), one tab
per schema group, tooltips from the schema's help, so a setting reads the same in Nuke, Blender
and on the command line.
"""

from __future__ import annotations

from typing import Any, List

import nuke

from .plugin import schema
from .plugin.settings import Settings

ID_KNOB = "vrmbg_id"  # hidden: marks a VRMBG node and names its engine session
MAIN_TAB = "vrmbg"
FRAME_RANGE = "frame_range"
AUTO = "auto"
MATTE_LAYER = "matte_layer"
STATUS = "status"
KEY_LIST = "keyframe_list"
KEY_BUTTONS = (
    ("set_keyframe", "Set keyframe here", "set_keyframe",
     "Make the current frame a keyframe: the keys input's alpha here is its matte, as given, "
     "and the frames after it continue from it. Frames before it are untouched."),
    ("remove_keyframe", "Remove keyframe here", "remove_keyframe",
     "The current frame is no longer a keyframe (the frames from it on are the model's)."),
)
BUTTONS = (  # knob, label, action in vrmbg_nuke.actions, tooltip
    ("analyse_range", "Analyse range", "analyse_range",
     "Compute every frame of the range (empty range = the input's frame range), in order, "
     "continuing from the last cached frame. Cancel from the progress bar."),
    ("analyse_frame", "Analyse this frame", "analyse_frame",
     "Compute the current frame (and any frames before it that are not cached yet)."),
    ("stop", "Stop", "stop", "Stop computing after the frame in flight; finished frames stay cached."),
    ("clear_cache", "Clear cache", "clear_cache",
     "Delete this node's cached mattes for the current settings (other settings keep theirs)."),
    ("release_gpu", "Release GPU", "release_gpu",
     "Unload the model from the GPU (or memory); it reloads on the next request."),
    ("prune_cache", "Prune cache", "prune_cache",
     "Delete this shot's cached frames for settings other than the current ones, least "
     "recently used first (as `vrmbg cache prune`); the status shows the cache's size."),
)


def nuke_params() -> List[schema.Param]:
    """The schema settings this node shows (those whose hosts include Nuke), in schema order."""
    return schema.for_host("nuke")


def _tooltip(param: schema.Param) -> str:
    return f"{param.help}\n\nCommand line: {param.flag}"


def knob_for(param: schema.Param) -> Any:
    """A knob for one schema setting, with its default, range and tooltip."""
    knob: Any
    if param.kind == "bool":
        knob = nuke.Boolean_Knob(param.name, param.label)
    elif param.kind == "int":
        knob = nuke.Int_Knob(param.name, param.label)
    elif param.kind == "float":
        knob = nuke.Double_Knob(param.name, param.label)
    elif param.kind == "enum":
        knob = nuke.Enumeration_Knob(param.name, param.label, list(param.choices))
    elif param.kind == "path":
        knob = nuke.File_Knob(param.name, param.label)
    else:  # str, frames
        knob = nuke.String_Knob(param.name, param.label)
    if param.kind in ("int", "float") and param.minimum is not None and param.maximum is not None:
        knob.setRange(param.minimum, param.maximum)
    knob.setValue(param.default)
    knob.setTooltip(_tooltip(param))
    knob.setFlag(nuke.STARTLINE)
    return knob


def _button(name: str, label: str, action: str, tooltip: str) -> Any:
    command = f"import vrmbg_nuke.actions\nvrmbg_nuke.actions.{action}(nuke.thisNode())"
    knob = nuke.PyScript_Knob(name, label, command)
    knob.setTooltip(tooltip)
    return knob


def add_knobs(node: Any) -> None:
    """Add the VRMBG tab (controls, status) and one tab per schema group to `node`."""
    node.addKnob(nuke.Tab_Knob(MAIN_TAB, "VRMBG"))
    hidden = nuke.String_Knob(ID_KNOB, "session id")
    hidden.setFlag(nuke.INVISIBLE)
    node.addKnob(hidden)
    span = nuke.String_Knob(FRAME_RANGE, "Analyse range")
    span.setTooltip("Frames for Analyse range, e.g. 1001-1100. Empty = the input's frame range.")
    node.addKnob(span)
    for index, (name, label, action, tooltip) in enumerate(BUTTONS):
        button = _button(name, label, action, tooltip)
        if index in (0, 2):
            button.setFlag(nuke.STARTLINE)
        node.addKnob(button)
    auto = nuke.Boolean_Knob(AUTO, "Follow playhead")
    auto.setValue(True)
    auto.setFlag(nuke.STARTLINE)
    auto.setTooltip("When the playhead moves, compute that frame in the background (newer "
                    "frames replace older requests). The viewer shows it when it is ready.")
    node.addKnob(auto)
    layer = nuke.String_Knob(MATTE_LAYER, "Matte layer")
    layer.setTooltip("Empty: the matte goes into the plate's alpha (see Output on the Output "
                     "tab: alpha, or rgba premultiplied). A name, e.g. 'vrmbg': the matte goes "
                     "into that layer's alpha and the plate passes through untouched.")
    node.addKnob(layer)
    status = nuke.Text_Knob(STATUS, "Status", "not analysed yet")
    status.setFlag(nuke.STARTLINE)
    node.addKnob(status)
    current = ""
    for param in nuke_params():
        if param.group != current:
            current = param.group
            node.addKnob(nuke.Tab_Knob("tab_" + current.lower(), current))
        node.addKnob(knob_for(param))
    add_keyframe_knobs(node)


def add_keyframe_knobs(node: Any) -> None:
    """The Keyframes tab (a node saved before it existed gets it when bound)."""
    if node.knob(KEY_LIST) is not None:
        return
    node.addKnob(nuke.Tab_Knob("tab_keyframes", "Keyframes"))
    for name, label, action, tooltip in KEY_BUTTONS:
        node.addKnob(_button(name, label, action, tooltip))
    frames = nuke.String_Knob(KEY_LIST, "Keyframes at")
    frames.setTooltip("The keyframes, e.g. 1012,1040 (as Analyse range). At each, the node "
                      "renders the keys input's alpha for the engine. A path typed in "
                      "Keyframes (Edit tab) wins over this list.")
    frames.setFlag(nuke.STARTLINE)
    node.addKnob(frames)


def read_settings(node: Any) -> Settings:
    """The node's settings as the engine wants them; ValueError names a bad one. A knob
    missing from a node saved by an older version leaves its setting at the default."""
    found = ((p.name, node.knob(p.name)) for p in nuke_params())
    return Settings.from_mapping({name: knob.value() for name, knob in found if knob is not None})


def is_schema_knob(name: str) -> bool:
    """True when `name` is a schema setting this node shows."""
    return any(p.name == name for p in nuke_params())
