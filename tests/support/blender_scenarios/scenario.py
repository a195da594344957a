"""Shared steps of the scripts that run inside real Blender (the `bpy` module) for the tests.

A scenario is started as `python SCRIPT ARGS.json` by tests/hosts/blender/test_blender_addon.py; it installs
the extension zip through Blender's own extension install, does its work and prints one line
`VRMBG-RESULT {json}` for the test to check.
"""

from __future__ import annotations

import json
import os
import sys

import bpy

RESULT_MARK = "VRMBG-RESULT "


def arguments() -> dict:
    """The scenario's arguments (the JSON file named on the command line)."""
    with open(sys.argv[1], encoding="utf-8") as source:
        return json.load(source)


def install_extension(zip_path: str) -> str:
    """Install and enable the add-on from its zip the way a user does; its module name."""
    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}, result
    module = "bl_ext.user_default.vrmbg"
    assert module in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return module


def addon(module: str):
    """The add-on's imported package (for its modules: engine, handlers, analyse...)."""
    return sys.modules[module]


def render_to_exr(scene, path_stem: str) -> None:
    """Renders go to 32-bit float RGBA EXRs (alpha kept exactly) with a fast 1-sample Cycles."""
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.device = "CPU"
    settings = scene.render.image_settings
    settings.file_format = "OPEN_EXR"
    settings.color_mode = "RGBA"
    settings.color_depth = "32"
    settings.exr_codec = "ZIP"
    scene.render.use_file_extension = True
    scene.render.filepath = path_stem
    if hasattr(scene.render, "compositor_device"):
        scene.render.compositor_device = "CPU"


def render_still(scene, frame: int, stem: str) -> str:
    """Render one frame with write_still to `stem`.exr; returns the written file."""
    scene.frame_set(frame)
    scene.render.filepath = stem
    result = bpy.ops.render.render(write_still=True)
    assert result == {"FINISHED"}, result
    path = stem + ".exr"
    assert os.path.isfile(path), os.listdir(os.path.dirname(path))
    return path


def finish(**data) -> None:
    """Print the result line and leave at once (Blender's own exit can hang when piped)."""
    print(RESULT_MARK + json.dumps(data), flush=True)
    for name, module in list(sys.modules.items()):
        if name.startswith("bl_ext.") and name.endswith(".engine"):
            module.shutdown()
    sys.stderr.flush()
    os._exit(0)
