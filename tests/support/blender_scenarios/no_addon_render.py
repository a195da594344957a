"""A render machine without the add-on: open a .blend saved with a matte and render it."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import arguments, finish, render_to_exr  # noqa: E402

args = arguments()
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
render_to_exr(scene, os.path.join(args["out"], "bare.####"))
scene.frame_start, scene.frame_end = args["animation"]
assert bpy.ops.render.render(animation=True) == {"FINISHED"}
finish(animation=os.path.join(args["out"], "bare.####.exr"),
       addon=[name for name in bpy.context.preferences.addons.keys() if "vrmbg" in name])
