"""Add a matte with the demo model to a plate, render stills and an animation, save the .blend."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension, render_still, render_to_exr  # noqa: E402

args = arguments()
module = install_extension(args["zip"])
scene = bpy.context.scene
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
result = bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo")
assert result == {"FINISHED"}, result
tree = addon(module).compositor.active_matte(scene)
out = args["out"]
render_to_exr(scene, os.path.join(out, "anim.####"))
stills = {str(frame): render_still(scene, frame, os.path.join(out, "still_%d" % frame))
          for frame in args["stills"]}
scene.frame_start, scene.frame_end = args["animation"]
scene.render.filepath = os.path.join(out, "anim.####")
assert bpy.ops.render.render(animation=True) == {"FINISHED"}
bpy.ops.wm.save_mainfile()
finish(stills=stills, animation=os.path.join(out, "anim.####.exr"),
       matte_pattern=tree.vrmbg.matte_pattern, first=tree.vrmbg.first, last=tree.vrmbg.last,
       plate=tree.vrmbg.plate, model=tree.vrmbg.model, name=tree.name,
       colour={name: getattr(addon(module).engine.engine_settings(tree), name)
               for name in ("ocio", "input_colorspace")})
