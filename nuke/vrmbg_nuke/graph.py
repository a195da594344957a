"""The nodes inside a VRMBG Group and how they are wired.

    Plate (Input) ──────────────┬──> Copy (B) ──> Premult ──> Output
                                │       ^ (A: the matte's alpha)
    InputWrite (Write, off) <───┘       │
    MatteRead (Read, the engine cache) ─> Gate (Switch: the matte where it is valid, else
    NotValid (Read, no file: fails a render) ─┘  black in the viewer, else an error in a render)
    Keys (Input 1) ─> KeyCopy (A: its alpha onto the plate's format, B) ─> KeyWrite (off)

InputWrite renders the plate to a scene-linear EXR sequence in the cache when the input is
not a Read on a file sequence; it stays disabled except while the node itself runs it, so a
farm render of the script never executes it on its own. KeyWrite renders the keys input's
alpha at the keyframes (`keys.py`) the same way.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

import nuke

from . import knobs
from .plugin.frame_ranges import frame_runs

PLATE = "Plate"
INPUT_WRITE = "InputWrite"
MATTE_READ = "MatteRead"
GATE = "Gate"
COPY = "MatteCopy"
PREMULT = "MattePremult"
OUTPUT = "Output1"
NOT_VALID = "NotValid"
# The gate's third input: a file that is never there, read with on_error=error, so a render
# pulling a frame whose matte is not known valid fails, naming why, instead of writing black.
NOT_VALID_FILE = "/VRMBG matte not valid at this frame - press Analyse range/matte.####.exr"
KEYS = "Keys"
KEY_WRITE = "KeyWrite"


def gate_expression(valid: Iterable[int]) -> str:
    """The gate's expression: 0 (the matte) where a frame's matte is valid; elsewhere 1
    (black) in the viewer and 2 (NotValid: an error) in a render ($gui is 0 in a render, in
    the GUI too), so a frame not computed yet, or made stale by a changed plate or setting,
    is never shown and never rendered as black, whatever the upstream walk missed."""
    terms = [f"frame=={a}" if a == b else f"(frame>={a} && frame<={b})"
             for a, b in frame_runs(valid)]
    return "(2-$gui)*!(" + " || ".join(terms) + ")" if terms else "2-$gui"


def _write(name: str, source: Any, channels: str) -> Any:
    """A disabled Write of raw 32-bit float EXRs (the node runs it itself)."""
    write = nuke.nodes.Write(name=name)
    write.setInput(0, source)
    write["file_type"].setValue("exr")
    write["datatype"].setValue("32 bit float")
    write["channels"].setValue(channels)
    write["raw"].setValue(True)  # the working space as it is: scene-linear; mattes as data
    write["create_directories"].setValue(True)
    write["disable"].setValue(True)
    return write


def add_missing(group: Any) -> None:
    """Give a Group made by an older version its NotValid branch, keys input and KeyWrite
    (when it is bound)."""
    gate = inner(group, GATE)
    group.begin()
    try:
        if group.node(NOT_VALID) is None:
            fail = nuke.nodes.Read(name=NOT_VALID)
            fail["file"].setValue(NOT_VALID_FILE)
            fail["on_error"].setValue("error")
            gate.setInput(2, fail)
        if group.node(KEYS) is None:
            keys = nuke.nodes.Input(name=KEYS)
            keys["number"].setValue(1)
            copy = nuke.nodes.Copy(name="KeyCopy")  # the plate's format, the keys' alpha
            copy.setInput(0, inner(group, PLATE))
            copy.setInput(1, keys)
            _write(KEY_WRITE, copy, "alpha")
    finally:
        group.end()


def build(group: Any) -> None:
    """Create and wire the internal nodes of an empty VRMBG Group."""
    group.begin()
    try:
        plate = nuke.nodes.Input(name=PLATE)
        _write(INPUT_WRITE, plate, "rgb")
        matte = nuke.nodes.Read(name=MATTE_READ)
        matte["raw"].setValue(True)  # mattes are data: never colour converted
        matte["on_error"].setValue("black")
        gate = nuke.nodes.Switch(name=GATE)
        gate.setInput(0, matte)
        gate["which"].setExpression(gate_expression([]))
        copy = nuke.nodes.Copy(name=COPY)
        copy.setInput(0, plate)
        copy.setInput(1, gate)
        copy["from0"].setValue("rgba.alpha")
        copy["to0"].setValue("rgba.alpha")
        premult = nuke.nodes.Premult(name=PREMULT)
        premult.setInput(0, copy)
        output = nuke.nodes.Output(name=OUTPUT)
        output.setInput(0, premult)
    finally:
        group.end()
    add_missing(group)


def inner(group: Any, name: str) -> Any:
    """An internal node by name; RuntimeError when the Group was edited and lacks it."""
    node = group.node(name)
    if node is None:
        raise RuntimeError(f"{group.name()}: its internal node {name} is missing "
                           "(recreate the VRMBG node)")
    return node


def apply_output(group: Any) -> None:
    """Wire Copy/Premult for the chosen output: alpha, rgba premultiplied, or a named layer.

    ValueError for a layer name Nuke cannot use (the wiring is left as it was)."""
    layer = group[knobs.MATTE_LAYER].value().strip()
    if layer and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", layer):
        raise ValueError(f"matte layer {layer!r}: use letters, digits and _ (e.g. vrmbg)")
    output_type = group["output_type"].value() if group.knob("output_type") else "alpha"
    copy = inner(group, COPY)
    premult = inner(group, PREMULT)
    if layer:
        nuke.tcl("add_layer", f"{layer} {layer}.alpha")  # one argument: a Tcl list
        copy["to0"].setValue(f"{layer}.alpha")
        premult["disable"].setValue(True)
    else:
        copy["to0"].setValue("rgba.alpha")
        premult["disable"].setValue(output_type != "rgba")


def show_mattes(group: Any, pattern: str, first: int, last: int, valid: Any,
                interactive: bool) -> None:
    """Point MatteRead at the engine's matte sequence and let only valid frames through."""
    matte = inner(group, MATTE_READ)
    if pattern and matte["file"].value() != pattern:
        matte["file"].setValue(pattern)
    for name, value in (("first", first), ("origfirst", first), ("last", last),
                        ("origlast", last)):
        if matte[name].value() != value:
            matte[name].setValue(value)
    # in the GUI a missing frame is black (and the status says so); a render must fail instead
    matte["on_error"].setValue("black" if interactive else "error")
    inner(group, GATE)["which"].setExpression(gate_expression(valid))
    matte["reload"].execute()


def hide_mattes(group: Any) -> None:
    """Show black everywhere (settings or input changed: nothing cached is known valid)."""
    inner(group, GATE)["which"].setExpression(gate_expression([]))


def input_write(group: Any) -> Any:
    """The Write that renders the plate for the engine."""
    return inner(group, INPUT_WRITE)


def plate_source(group: Any) -> Optional[Any]:
    """The node connected to the Group's input, or None."""
    return group.input(0)


def keys_source(group: Any) -> Optional[Any]:
    """The node connected to the Group's keys input (the artist's corrections), or None."""
    return group.input(1)
