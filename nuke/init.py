"""VRMBG for Nuke, run by every Nuke session (GUI, `nuke -x`, `nuke -t`).

Add this folder to NUKE_PATH (or `nuke.pluginAddPath` it from your own init.py). It registers
the VRMBG node's callbacks, so saved scripts, farm renders and pasted nodes work.
"""

import vrmbg_nuke

vrmbg_nuke.register()
