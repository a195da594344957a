"""What the operators say when there is nothing to do: one reason, and no engine started."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension  # noqa: E402


def outcome(operator, **kwargs):
    """The operator's result, or the errors it reported (bpy raises them as one message)."""
    try:
        return sorted(operator(**kwargs))
    except RuntimeError as error:
        return [line for line in str(error).splitlines() if line.strip()]


args = arguments()
package = addon(install_extension(args["zip"]))
missing = outcome(bpy.ops.vrmbg.add_matte, filepath=args["missing"], model="demo")
stopped = outcome(bpy.ops.vrmbg.stop)
released = outcome(bpy.ops.vrmbg.release_gpu)
real_platform, sys.platform = sys.platform, "win32"  # as on Windows
try:
    windows = outcome(bpy.ops.vrmbg.add_matte, filepath=args["plate_frame"], model="demo")
finally:
    sys.platform = real_platform
names = {path: package.plugin.paths.shot_name(path) for path in args["plates"]}
engine_started = package.engine._client is not None
os.environ.update(HF_HUB_OFFLINE="1", HF_HOME=os.path.join(os.environ["HOME"], "hf"))
offline = outcome(bpy.ops.vrmbg.add_matte, filepath=args["plate_frame"], model="briaai/VRMBG-3.0")
finish(offline=offline, windows=windows, missing=missing, stopped=stopped, released=released,
       names=names,
       engine_started=engine_started)
