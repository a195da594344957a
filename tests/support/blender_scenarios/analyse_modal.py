"""Drive Analyse the way its modal operator is driven (timer ticks, then Esc), then to the end."""

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
context = bpy.context
slowest_step = 0.0


def step(driver, event_type):
    global slowest_step
    started = time.monotonic()
    outcome = driver.step(context, event_type)
    slowest_step = max(slowest_step, time.monotonic() - started)
    return outcome


def run_until(driver, outcome_wanted, stop=lambda: False, limit=120.0):
    outcome, deadline = "RUNNING_MODAL", time.monotonic() + limit
    while outcome == "RUNNING_MODAL" and not stop() and time.monotonic() < deadline:
        outcome = step(driver, "TIMER")
        time.sleep(0.02)
    return outcome


class FakeLayout:
    """Records what a panel draws (Blender gives panels a layout only inside its UI)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append([name, [a for a in args if isinstance(a, str)],
                               {k: v for k, v in kwargs.items() if isinstance(v, (str, float))}])
            return self
        return record


first = package.analyse.AnalysisDriver(context, tree)
passed_through = step(first, "MOUSEMOVE")
run_until(first, "RUNNING_MODAL", stop=lambda: first.analysis.fraction > 0)
progress_seen = first.analysis.fraction
status_while_running = package.engine.status_line(tree)
step(first, "ESC")
cancel_outcome = run_until(first, "CANCELLED")
cancelled_summary = first.analysis.summary()
pattern = tree.vrmbg.matte_pattern
frames = range(tree.vrmbg.first, tree.vrmbg.last + 1)


def on_disk():
    return [f for f in frames if os.path.exists(package.plugin.paths.frame_file(pattern, f))]


done_after_cancel = on_disk()

second = package.analyse.AnalysisDriver(context, tree)
finish_outcome = run_until(second, "FINISHED")
finished_fraction = second.analysis.fraction
done_after_finish = on_disk()
again = bpy.ops.vrmbg.analyse()
again_status = package.engine.status_line(tree)
panel = package.panel.VRMBG_PT_matte
drawn = FakeLayout()
panel.draw(type("PanelSelf", (), {"layout": drawn})(), context)
stopped = bpy.ops.vrmbg.stop()
released = bpy.ops.vrmbg.release_gpu()
cleared = bpy.ops.vrmbg.clear_cache()
left_after_clear = on_disk()
finish(passed_through=passed_through, progress_seen=progress_seen,
       status_while_running=status_while_running, cancel_outcome=cancel_outcome,
       cancelled_summary=cancelled_summary, done_after_cancel=done_after_cancel,
       finish_outcome=finish_outcome, finished_fraction=finished_fraction,
       finished_summary=second.analysis.summary(), done_after_finish=done_after_finish,
       again=sorted(again), again_status=again_status, panel=drawn.calls,
       stopped=sorted(stopped), released=sorted(released), cleared=sorted(cleared),
       left_after_clear=left_after_clear,
       frames=[tree.vrmbg.first, tree.vrmbg.last], slowest_step=slowest_step)
