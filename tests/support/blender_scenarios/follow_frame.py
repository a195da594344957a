"""With Auto on, changing the frame asks the engine for it; the matte reloads when it is ready."""

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
assert bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo") == {"FINISHED"}
tree = package.compositor.active_matte(scene)
pattern = tree.vrmbg.matte_pattern
image = tree.nodes[package.node_group.MATTE_NODE].image
reloads = []
original_reload = package.node_group.reload_matte
package.node_group.reload_matte = lambda t: (reloads.append(t.name), original_reload(t))
scene.frame_set(args["frame"])
deadline = time.monotonic() + 120
while not reloads and time.monotonic() < deadline:
    package.engine.drain_main_thread()  # what Blender's timer does on the main thread
    time.sleep(0.05)
frames = range(tree.vrmbg.first, tree.vrmbg.last + 1)
frame_file = package.plugin.paths.frame_file
finish(reloaded=reloads, matte_image=bpy.path.abspath(image.filepath),
       on_disk=[f for f in frames if os.path.exists(frame_file(pattern, f))])
