"""VRMBG Matte for Nuke: a temporally stable alpha from BRIA VRMBG-3.0 under any plate.

    import vrmbg_nuke
    vrmbg_nuke.register()       # init.py: callbacks for loading, edits and renders
    vrmbg_nuke.add_menu()       # menu.py: Nodes toolbar > VRMBG > VRMBG Matte
    vrmbg_nuke.create_node()    # a VRMBG node under the selected node

The engine runs in its own Python (the `vrmbg worker` process); this package is host glue.
"""

from __future__ import annotations

from typing import Any

import nuke

from . import callbacks, graph, knobs
from .controller import controller_for, new_id
from .plugin import platform_check

NODE_NAME = "VRMBG1"  # Nuke numbers the next ones VRMBG2, VRMBG3...
MENU_PATH = "VRMBG/VRMBG Matte"
MENU_COMMAND = "import vrmbg_nuke\nvrmbg_nuke.create_node()"


def register() -> None:
    """Register the node's callbacks (safe to call more than once); on a system vrmbg does
    not run on, print the one line that says so instead."""
    problem = platform_check.unsupported_platform()
    if problem:
        print(f"VRMBG: {problem}")
        return
    callbacks.register()


def add_menu() -> None:
    """Add Nodes toolbar > VRMBG > VRMBG Matte."""
    nuke.menu("Nodes").addMenu("VRMBG").addCommand("VRMBG Matte", MENU_COMMAND)


def create_node() -> Any:
    """A new VRMBG node, connected under the selected node like any node the user creates
    (None, with a message saying why, on a system vrmbg does not run on)."""
    problem = platform_check.unsupported_platform()
    if problem:
        nuke.message(f"VRMBG: {problem}")
        return None
    selected = nuke.selectedNodes()
    group: Any = nuke.createNode("Group", inpanel=False)  # a Group: begin(), nodes(), end()
    group.begin()
    try:
        for child in group.nodes():  # start from an empty group whatever Nuke put in it
            nuke.delete(child)
    finally:
        group.end()
    group.setName(NODE_NAME)
    knobs.add_knobs(group)
    group[knobs.ID_KNOB].setValue(new_id())
    graph.build(group)
    if selected and group.input(0) is None and selected[-1] is not group:
        group.setInput(0, selected[-1])  # an empty Group had no input to connect at creation
    register()
    callbacks.bind(group)  # its controller, wiring and status
    controller_for(group).engaged = True  # made by the artist: it may follow the playhead
    return group
