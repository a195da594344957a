"""Open a saved .blend with a matte (as a farm render does) and render an animation."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension, render_to_exr  # noqa: E402

args = arguments()
module = install_extension(args["zip"])
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
tree = addon(module).compositor.active_matte(scene)
for name, value in args.get("settings", {}).items():
    setattr(tree.vrmbg, name, value)  # as the panel does
render_to_exr(scene, os.path.join(args["out"], "reopened.####"))
scene.frame_start, scene.frame_end = args["animation"]
assert bpy.ops.render.render(animation=True) == {"FINISHED"}
finish(animation=os.path.join(args["out"], "reopened.####.exr"),
       matte_pattern=tree.vrmbg.matte_pattern, model=tree.vrmbg.model,
       auto=tree.vrmbg.auto, is_matte=tree.vrmbg.is_matte)
