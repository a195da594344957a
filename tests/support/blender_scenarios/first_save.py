"""Analyse a matte in a file never saved, then save it: the frames move beside the .blend."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension  # noqa: E402

args = arguments()
package = addon(install_extension(args["zip"]))
assert bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo") == {"FINISHED"}
tree = package.compositor.active_matte(bpy.context.scene)
assert bpy.ops.vrmbg.analyse() == {"FINISHED"}
unsaved_pattern = tree.vrmbg.matte_pattern
try:  # a save that fails (no such folder) must leave the open file's matte as it was
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(args["blend"] + ".missing", "x.blend"))
except RuntimeError:
    pass
output = next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")
after_failed_save = output.inputs[0].links[0].from_node.bl_idname
os.makedirs(os.path.dirname(args["blend"]), exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
assert bpy.ops.vrmbg.analyse() == {"FINISHED"}
frames = range(tree.vrmbg.first, tree.vrmbg.last + 1)
frame_file = package.plugin.paths.frame_file
finish(unsaved_pattern=unsaved_pattern, after_failed_save=after_failed_save, saved_pattern=tree.vrmbg.matte_pattern,
       status=package.engine.status_line(tree),
       saved_frames=[f for f in frames if os.path.exists(frame_file(tree.vrmbg.matte_pattern, f))])
