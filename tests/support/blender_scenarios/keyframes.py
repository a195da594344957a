"""Keyframes: a key image at frame k changes frames k and after, never those before; a changed
key image is written again (a render that needs it first stops); removing it restores the
model's mattes; a .blend whose matte has no keyframe properties opens and renders."""

import os
import shutil
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension  # noqa: E402

args = arguments()
package = addon(install_extension(args["zip"]))
handlers, engine = package.handlers, package.engine
scene = bpy.context.scene
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
assert bpy.ops.vrmbg.add_matte(filepath=args["plate_frame"], model="demo") == {"FINISHED"}
tree = package.compositor.active_matte(scene)
frames = list(range(tree.vrmbg.first, tree.vrmbg.last + 1))
k = args["k"]


def mattes(tag):
    """Every frame's exact matte (as a render gets it), copied aside, and when it was written."""
    copies, written = {}, {}
    for frame in frames:
        path = handlers.ensure_exact(bpy.data.node_groups[tree_name], frame)
        copies[frame] = os.path.join(args["out"], tag, "m.%d.exr" % frame)
        os.makedirs(os.path.dirname(copies[frame]), exist_ok=True)
        shutil.copyfile(path, copies[frame])
        written[frame] = os.stat(path).st_mtime_ns
    return copies, written


def render_stops(frame):
    """What a render of `frame` says (None: it renders)."""
    said, stop = [], handlers.stop_render
    handlers.stop_render = lambda _tree, _frame, error: said.append(str(error))
    scene.frame_current = frame  # as a render sets it, without the frame-change handler
    try:
        handlers.exact_frame(scene)
    finally:
        handlers.stop_render = stop
        handlers.render_finished()
    return said[0] if said else None


class Layout:
    """Records what a panel draws: [method, its text arguments]."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **_kw: self.calls.append(
            [name] + [a for a in args if isinstance(a, str)]) or self


tree_name = tree.name
none, _ = mattes("none")
key = bpy.data.images.load(args["key_frame"])
key.source = "SEQUENCE"
tree.vrmbg.key_image = key
scene.frame_set(k)
set_result = bpy.ops.vrmbg.set_keyframe()
folder = engine.key_folder(tree)
keyed, written = mattes("keyed")
state = dict(key_frames=tree.vrmbg.key_frames, key_files=sorted(os.listdir(folder)),
             setting=engine.engine_settings(tree).keyframes, status=engine.status_line(tree),
             panel=Layout())
package.panel.VRMBG_PT_keyframes.draw(type("Panel", (), {"layout": state["panel"]})(),
                                      bpy.context)
state["panel"] = state["panel"].calls
shutil.copyfile(args["changed_key"], args["key_frame"])  # the artist fixes the key
os.utime(args["key_frame"], ns=(1, 1))
stopped = {str(f): render_stops(f) for f in (k - 1, k + 1)}
scene.frame_set(k + 1)  # showing a frame writes what changed
changed, rewritten = mattes("changed")
scene.frame_set(k)
remove_result = bpy.ops.vrmbg.remove_keyframe()
removed, _ = mattes("removed")
left = sorted(os.listdir(folder))
for name in ("key_frames", "key_image"):  # as a matte made before keyframes has it
    tree.vrmbg.property_unset(name)
bpy.ops.wm.save_mainfile()
bpy.ops.wm.open_mainfile(filepath=args["blend"])
tree = bpy.data.node_groups[tree_name]
reopened = dict(key_frames=tree.vrmbg.key_frames, key_image=tree.vrmbg.key_image is None,
                keyframes=tree.vrmbg.keyframes, matte=handlers.ensure_exact(tree, k))
finish(none=none, keyed=keyed, changed=changed, removed=removed, set=sorted(set_result),
       removed_result=sorted(remove_result), written=written, rewritten=rewritten,
       stopped=stopped, left=left, folder=folder, reopened=reopened, **state)
