"""Add VRMBG Matte as the UI does (the engine starts in the background): the call returns at
once, the status says the engine is starting, and the frames follow when it is up."""

import os
import sys
import time

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension  # noqa: E402

args = arguments()
package = addon(install_extension(args["zip"]))
scene = bpy.context.scene
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
started = time.monotonic()
added = bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo", in_background=True)
returned_after = time.monotonic() - started
tree = package.compositor.active_matte(scene)
status_at_once = package.engine.status_line(tree)
deadline = time.monotonic() + 120
while tree.vrmbg.first != args["first"] and time.monotonic() < deadline:
    package.engine.drain_main_thread()  # what Blender's timer does on the main thread
    time.sleep(0.05)
finish(added=sorted(added), returned_after=returned_after, status_at_once=status_at_once,
       opened_after=time.monotonic() - started, frames=[tree.vrmbg.first, tree.vrmbg.last],
       scene_range=[scene.frame_start, scene.frame_end], status=package.engine.status_line(tree))
