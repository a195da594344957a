"""Start a "Nuke session" for tests: the fake `nuke` module plus an installed VRMBG folder.

    folder = build_folder(tmp_path)          # `vrmbg install nuke` (build_nuke_folder)
    nuke, vrmbg_nuke = start_nuke(folder)    # fresh session: init.py and menu.py have run

Each start is a new Nuke process as far as the node can tell: the fake is reset and the node
package (with its plugin copy and shared client) is imported afresh from the folder. Standard
library only, so the node's unit tests also run under Python 3.9.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from typing import Any, Callable, Tuple

FAKE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_nuke")
FOLDER_VARIABLE = "VRMBG_TEST_NUKE_FOLDER"  # a folder built by the parent (Python 3.9 runs)


def build_folder(parent: str) -> str:
    """`vrmbg install nuke` into parent/nuke-plugins (or the folder the parent process built)."""
    given = os.environ.get(FOLDER_VARIABLE, "")
    if given:
        return given
    from vrmbg.core.install import build_nuke_folder
    return build_nuke_folder(os.path.join(str(parent), "nuke-plugins"), python=sys.executable)


def _forget_node_package() -> None:
    controller = sys.modules.get("vrmbg_nuke.controller")
    if controller is not None:
        controller.wait_for_background()
    for name in [n for n in sys.modules if n == "vrmbg_nuke" or n.startswith("vrmbg_nuke.")]:
        module = sys.modules.pop(name)
        shared = getattr(module, "_SHARED", None)
        if name.endswith("plugin.client") and shared is not None:
            try:
                shared.shutdown()
            except Exception:
                pass


def start_nuke(folder: str, gui: bool = True) -> Tuple[Any, Any]:
    """A fresh session with `folder` on NUKE_PATH: init.py ran, and menu.py when `gui`."""
    if FAKE_DIR not in sys.path:
        sys.path.insert(0, FAKE_DIR)
    import nuke
    nuke._reset()
    nuke._set_gui(gui)
    _forget_node_package()
    sys.path[:] = [p for p in sys.path if not p.endswith("nuke-plugins")]
    sys.path.insert(0, folder)
    runpy.run_path(os.path.join(folder, "init.py"))
    if gui:
        runpy.run_path(os.path.join(folder, "menu.py"))
    import vrmbg_nuke
    return nuke, vrmbg_nuke


def stop_nuke() -> None:
    """End the session: the node package's shared worker is shut down."""
    _forget_node_package()


def pump(nuke: Any, until: Callable[[], bool], timeout: float = 60.0) -> None:
    """Run the main thread's queue until `until()` is true; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting on the Nuke main thread")
        nuke._process_main_thread(0.05)
    nuke._process_main_thread()


def make_read(nuke: Any, pattern: str, first: int, last: int, colorspace: str = "") -> Any:
    """A Read node on a sequence, selected (new nodes go under it)."""
    read = nuke.nodes.Read(file=pattern, first=first, last=last, origfirst=first,
                           origlast=last)
    if colorspace:
        read["colorspace"].setValue(colorspace)
    for node in nuke.allNodes():
        node.setSelected(node is read)
    return read


def use_cg_config(nuke: Any) -> None:
    """Project colour management: OCIO with Nuke's copy of the ACES cg config."""
    root = nuke.root()
    root["colorManagement"].setValue("OCIO")
    root["OCIO_config"].setValue("fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1")
    root["workingSpaceLUT"].setValue("scene_linear")


def new_vrmbg(nuke: Any, vrmbg_nuke: Any, **knob_values: Any) -> Any:
    """A VRMBG node under the selected node (from the toolbar menu in the GUI), knobs set."""
    if nuke.GUI:
        nuke.menu("Nodes").findItem("VRMBG/VRMBG Matte").invoke()
        node = nuke.selectedNode()
    else:  # `nuke -x` has no menus: scripts make nodes in Python
        node = vrmbg_nuke.create_node()
    for name, value in knob_values.items():
        node[name].setValue(value)
    return node
