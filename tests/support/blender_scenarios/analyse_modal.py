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
status_bar = first.status_text()
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
groups = {}
for sub in package.panel.classes[1:]:
    layout = FakeLayout()
    sub.draw(type("PanelSelf", (), {"layout": layout})(), context)
    groups[sub.bl_label] = {"parent": sub.bl_parent_id, "options": sorted(sub.bl_options),
                            "props": [args[0] for name, args, _ in layout.calls if name == "prop"]}
dialog = FakeLayout()
package.operators.VRMBG_OT_add_matte.draw(type("Op", (), {"layout": dialog})(), context)
session = package.engine.session_of(tree)


def wait_for(test, limit=60.0):
    deadline = time.monotonic() + limit
    while not test() and time.monotonic() < deadline:
        package.engine.drain_main_thread()
        time.sleep(0.05)
    return session.cache_size_text()


size_one_chain = wait_for(lambda: session.cache_size_text())
default_resolution = tree.vrmbg.resolution
tree.vrmbg.resolution = 64  # a second chain of the same shot
assert bpy.ops.vrmbg.analyse() == {"FINISHED"}
tree.vrmbg.resolution = default_resolution
package.engine.open_session(tree)  # what the panel's Auto does on a change
session = package.engine.session_of(tree)
size_two_chains = wait_for(lambda: "other settings" in session.cache_size_text())
pruned = sorted(bpy.ops.vrmbg.prune_cache(keep="0"))
prune_status = package.engine.status_line(tree)
size_after_prune = session.cache_size_text()
done_after_prune = on_disk()
stopped = bpy.ops.vrmbg.stop()
released = bpy.ops.vrmbg.release_gpu()
released_status = package.engine.status_line(tree)
cleared = bpy.ops.vrmbg.clear_cache()
cleared_status = package.engine.status_line(tree)
left_after_clear = on_disk()
finish(passed_through=passed_through, progress_seen=progress_seen,
       status_while_running=status_while_running, status_bar=status_bar,
       cancel_outcome=cancel_outcome,
       cancelled_summary=cancelled_summary, done_after_cancel=done_after_cancel,
       finish_outcome=finish_outcome, finished_fraction=finished_fraction,
       finished_summary=second.analysis.summary(), done_after_finish=done_after_finish,
       again=sorted(again), again_status=again_status, panel=drawn.calls,
       stopped=sorted(stopped), released=sorted(released), cleared=sorted(cleared),
       released_status=released_status, cleared_status=cleared_status,
       left_after_clear=left_after_clear, groups=groups, dialog=dialog.calls,
       size_one_chain=size_one_chain, size_two_chains=size_two_chains, pruned=pruned,
       prune_status=prune_status, size_after_prune=size_after_prune,
       done_after_prune=done_after_prune,
       frames=[tree.vrmbg.first, tree.vrmbg.last], slowest_step=slowest_step)
