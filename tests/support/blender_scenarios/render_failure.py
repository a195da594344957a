"""A plate frame goes bad after the matte was added: the animation render must stop there."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import arguments, install_extension, render_to_exr  # noqa: E402

args = arguments()
install_extension(args["zip"])
scene = bpy.context.scene
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
assert bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo") == {"FINISHED"}
with open(args["corrupt"], "wb") as plate:
    plate.write(b"not an EXR any more")
render_to_exr(scene, os.path.join(args["out"], "anim.####"))
scene.frame_start, scene.frame_end = args["animation"]
bpy.ops.render.render(animation=True)
print("the render went on past the failed frame", flush=True)
os._exit(0)
