"""The VRMBG Nuke node's own behaviour, in the fake `nuke` with a client double.

Plain unittest and standard library only: `test_nuke_py39.py` runs this file under Python 3.9
(Nuke 14's Python) as well. End-to-end behaviour with the real worker and the demo model is in
`test_nuke_engine.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import unittest

from nuke_client_double import ClientDouble
from nuke_harness import build_folder, make_read, new_vrmbg, pump, start_nuke, stop_nuke, \
    use_cg_config

FIRST, LAST = 1001, 1010
PLATE = "/shots/sh 010/plate/sh010.####.exr"  # a space: paths are never shell strings


class NodeCase(unittest.TestCase):
    """A fresh fake Nuke session per test, with the client double behind every node."""

    gui = True
    hold = False

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="vrmbg-nuke-")
        cls.folder = build_folder(cls.tmp)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.nuke, self.vrmbg_nuke = start_nuke(self.folder, gui=self.gui)
        from vrmbg_nuke import controller
        from vrmbg_nuke.plugin import client
        self.client = ClientDouble(FIRST, LAST, client.EngineError, hold=self.hold)
        self._saved = controller.get_client
        controller.get_client = lambda: self.client
        self.controller = controller
        use_cg_config(self.nuke)
        self.nuke.root()["first_frame"].setValue(FIRST)
        self.nuke.root()["last_frame"].setValue(LAST)
        self.nuke._STATE.frame = FIRST  # a script opens on its first frame
        self.read = make_read(self.nuke, PLATE, FIRST, LAST, "default (ACEScg)")

    def tearDown(self) -> None:
        self.controller.get_client = self._saved
        stop_nuke()

    def node(self, **values):
        return new_vrmbg(self.nuke, self.vrmbg_nuke, **values)

    def wait_for(self, what, timeout: float = 10.0) -> None:
        pump(self.nuke, what, timeout)

    def gate(self, node, frame: int) -> float:
        """The gate at `frame`: 0 shows the matte, 1 black (the playhead does not move)."""
        self.nuke._STATE.frame = frame
        return node.node("Gate")["which"].value()


class KnobsAndMenu(NodeCase):
    def test_menu_makes_a_group_under_the_selected_read(self):
        node = self.node()
        self.assertEqual(node.Class(), "Group")
        self.assertIs(node.input(0), self.read)
        self.assertEqual(node.name(), "VRMBG1")
        self.assertEqual(self.node().name(), "VRMBG2")

    def test_knobs_come_from_the_schema_with_tabs_and_tooltips(self):
        from vrmbg_nuke.plugin import schema
        node = self.node()
        shown = schema.for_host("nuke")
        tab = None
        for knob in node.allKnobs():
            if knob.Class() == "Tab_Knob":
                tab = knob.label()
            param = next((p for p in shown if p.name == knob.name()), None)
            if param is None:
                continue
            self.assertEqual(tab, param.group, knob.name())
            self.assertIn(param.help, knob.tooltip())
            self.assertIn(param.flag, knob.tooltip())
            if param.kind == "enum":
                self.assertEqual(knob.values(), list(param.choices))
            self.assertEqual(knob.value(), param.default, knob.name())
        for param in schema.PARAMS:
            self.assertEqual(node.knob(param.name) is not None, "nuke" in param.hosts, param.name)
        for name in ("analyse_range", "analyse_frame", "stop", "clear_cache", "release_gpu",
                     "status", "auto", "frame_range", "matte_layer"):
            self.assertIsNotNone(node.knob(name), name)

    def test_the_readme_names_every_knob(self):
        from vrmbg_nuke.plugin import schema
        here = os.path.dirname(os.path.abspath(__file__))
        readme = os.path.join(here, os.pardir, os.pardir, os.pardir, "README.md")
        if not os.path.isfile(readme):
            self.skipTest("no README.md beside tests/")
        with open(readme, encoding="utf-8") as handle:
            text = handle.read()
        section = text[text.index("\n## Nuke\n"):]
        section = section[:section.index("\n## ", 5)]
        missing = [p.name for p in schema.for_host("nuke") if f"`{p.name}`" not in section]
        self.assertEqual(missing, [])

    def test_output_knobs_wire_alpha_premultiplied_or_a_layer(self):
        node = self.node()
        copy, premult = node.node("MatteCopy"), node.node("MattePremult")
        self.assertEqual((copy["to0"].value(), premult["disable"].value()), ("rgba.alpha", True))
        self.nuke._user_set(node["output_type"], "rgba")
        self.assertEqual((copy["to0"].value(), premult["disable"].value()), ("rgba.alpha", False))
        self.nuke._user_set(node["matte_layer"], "vrmbg")
        self.assertEqual((copy["to0"].value(), premult["disable"].value()), ("vrmbg.alpha", True))
        self.assertIn("vrmbg", self.nuke.layers())
        self.nuke._user_set(node["matte_layer"], "my matte")
        self.assertIn("last error: matte layer 'my matte'", node["status"].value())
        self.assertEqual(copy["to0"].value(), "vrmbg.alpha")  # left as it was


class PixelsIn(NodeCase):
    gui = False  # no playhead following: only the actions under test ask the engine

    def test_a_read_on_a_sequence_is_read_directly_in_its_colour_space(self):
        node = self.node()
        self.controller.controller_for(node).ensure_for_render(node, 1003)
        (_, source, settings, session), = self.client.ops("open")
        self.assertEqual(source, PLATE)
        self.assertEqual(settings["ocio"], "ocio://cg-config-v1.0.0_aces-v1.3_ocio-v2.1")
        self.assertEqual(settings["input_colorspace"], "ACEScg")
        self.assertEqual(self.client.ops("ensure_frame"), [("ensure_frame", session, 1003)])

    def test_a_typed_colour_space_wins_over_the_read(self):
        node = self.node(input_colorspace="ACEScct")
        self.controller.controller_for(node).ensure_for_render(node, 1001)
        self.assertEqual(self.client.ops("open")[0][2]["input_colorspace"], "ACEScct")

    def test_an_unknown_colour_space_is_an_error_on_the_node(self):
        config = os.path.join(self.tmp, "tiny config.ocio")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("ocio_profile_version: 2\nroles:\n  scene_linear: lin\n"
                         "colorspaces:\n  - !<ColorSpace>\n    name: lin\n")
        root = self.nuke.root()
        root["OCIO_config"].setValue("custom")
        root["customOCIOConfigPath"].setValue(config)
        self.read["colorspace"].setValue("NotASpace")
        node = self.node()
        with self.assertRaises(RuntimeError) as raised:
            self.controller.controller_for(node).ensure_for_render(node, 1001)
        self.assertIn("NotASpace", str(raised.exception))
        self.assertIn("last error: colour space 'NotASpace' is not in the OCIO config",
                      node["status"].value())
        self.assertEqual(self.client.ops("open"), [])

    def test_anything_but_a_read_sequence_is_rendered_for_the_engine(self):
        dot = self.nuke.nodes.Dot(inputs=[self.read])
        dot.setSelected(True)
        self.read.setSelected(False)
        node = self.node()
        self.assertIs(node.input(0), dot)
        from vrmbg_nuke import pixels_in, knobs
        plate = pixels_in.plate_for(node, knobs.read_settings(node), "id")
        self.assertFalse(plate.direct)
        self.assertTrue(plate.pattern.endswith(os.path.join("input.####.exr")))
        self.assertEqual((plate.first, plate.last), (FIRST, LAST))
        self.assertEqual(plate.settings["input_colorspace"], "scene_linear")
        self.assertTrue(plate.settings["content_hash"])

    def test_no_input_says_so(self):
        self.read.setSelected(False)
        node = self.node()
        with self.assertRaises(RuntimeError):
            self.controller.controller_for(node).ensure_for_render(node, 1001)
        self.assertIn("connect a plate", node["status"].value())


class Headless(NodeCase):
    gui = False

    def test_an_engine_failure_fails_the_render_with_the_reason(self):
        node = self.node()
        write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "out.####.exr"),
                                      inputs=[node])
        self.client.fail = "cannot read /shots/sh010.1003.exr (frame 1003): truncated file"
        with self.assertRaises(RuntimeError) as raised:
            self.nuke.execute(write, 1003, 1003)
        self.assertIn("truncated file", str(raised.exception))
        self.assertIn("VRMBG1", str(raised.exception))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out.1003.exr")))

    def test_each_rendered_frame_is_ensured_through_the_blocking_call(self):
        node = self.node()
        controller = self.controller.controller_for(node)
        for frame in (1005, 1002):
            controller.ensure_for_render(node, frame)
        self.assertEqual([c[2] for c in self.client.ops("ensure_frame")], [1005, 1002])
        self.assertEqual(self.client.ops("ensure"), [])  # never the non-blocking request
        matte = node.node("MatteRead")
        self.assertEqual(matte["on_error"].value(), "error")  # a missing matte fails a render
        self.assertTrue(matte["file"].value().endswith("matte.####.exr"))

    def test_a_frame_outside_the_input_fails(self):
        node = self.node()
        with self.assertRaises(RuntimeError) as raised:
            self.controller.controller_for(node).ensure_for_render(node, 999)
        self.assertIn("outside", str(raised.exception))


class Interactive(NodeCase):
    hold = True

    def test_analyse_range_shows_progress_and_cancel_stops_the_engine(self):
        node = self.node(auto=False)
        node["analyse_range"].execute()
        self.wait_for(lambda: self.client.ops("ensure"))
        (_, session, frame, frames, supersede), = self.client.ops("ensure")
        self.assertEqual((frame, frames, supersede), (None, f"{FIRST}-{LAST}", False))
        task = self.nuke.ProgressTask._instances[-1]
        self.client.emit({"event": "progress", "session": session, "frame": 1001, "done": 1,
                          "total": 10, "seconds_per_frame": 2.5, "eta_seconds": 22.5,
                          "stage": "computing"})
        self.assertEqual(task._progress[-1], 10)
        task._cancel()
        self.wait_for(lambda: self.client.ops("cancel"))
        self.wait_for(lambda: "Stopped: " in node["status"].value())
        matte = self.controller.controller_for(node).matte  # the wording: test_host_session
        self.assertEqual(node["status"].value(), matte.status_text(self.nuke.frame()))

    def test_following_the_playhead_supersedes_and_never_blocks(self):
        node = self.node()
        self.nuke.frame(1005)
        self.wait_for(lambda: self.client.ops("ensure"))
        self.nuke.frame(1007)
        self.wait_for(lambda: len(self.client.ops("ensure")) == 2)
        requests = [(c[2], c[4]) for c in self.client.ops("ensure")]
        self.assertEqual(requests, [(1005, True), (1007, True)])
        self.assertEqual(self.gate(node, 1007), 1.0)  # black while not computed
        self.nuke._STATE.frame = 1007
        self.nuke._process_main_thread()
        self.assertIn("frame 1007: not computed yet", node["status"].value())
        self.client.finish_ensures()
        self.wait_for(lambda: self.gate(node, 1007) == 0.0)
        self.assertEqual(self.gate(node, 1005), 0.0)
        self.assertEqual(self.gate(node, 1006), 1.0)

    def test_a_changed_setting_hides_mattes_at_once(self):
        node = self.node()
        self.nuke.frame(1002)
        self.wait_for(lambda: self.client.ops("ensure"))
        self.client.finish_ensures()
        self.wait_for(lambda: self.gate(node, 1002) == 0.0)
        self.nuke._user_set(node["resolution"], 512)
        self.assertEqual(self.gate(node, 1002), 1.0)
        self.wait_for(lambda: len(self.client.ops("open")) == 2)
        self.assertEqual(self.client.ops("open")[1][2]["resolution"], 512)

    def test_stop_clear_and_release_reach_the_engine(self):
        node = self.node(auto=False)
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.client.ops("ensure"))
        node["stop"].execute()
        self.wait_for(lambda: self.client.ops("cancel"))
        node["clear_cache"].execute()
        self.wait_for(lambda: self.client.ops("clear"))
        node["release_gpu"].execute()
        self.wait_for(lambda: "released 1 model" in node["status"].value())


class ScriptLife(NodeCase):
    def test_save_and_reopen_keep_knobs_and_rebind(self):
        node = self.node(resolution=512, matte_layer="holdout", auto=False)
        node_id = node["vrmbg_id"].value()
        script = os.path.join(self.tmp, "comp v01.nk")
        self.nuke.scriptSaveAs(script)
        self.nuke.scriptClear()
        self.nuke.scriptOpen(script)
        node = self.nuke.toNode("VRMBG1")
        self.assertEqual((node["resolution"].value(), node["matte_layer"].value()),
                         (512, "holdout"))
        self.assertEqual(node["vrmbg_id"].value(), node_id)
        self.assertEqual(node.node("MatteCopy")["to0"].value(), "holdout.alpha")
        self.assertEqual(node.node("Gate")["which"].value(), 1.0)  # black until known valid
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.client.ops("ensure"))
        self.assertEqual(self.client.ops("open")[0][2]["resolution"], 512)

    def test_a_pasted_copy_gets_its_own_session(self):
        node = self.node(auto=False)
        for other in self.nuke.allNodes():
            other.setSelected(other is node)
        self.nuke.nodeCopy("%clipboard%")
        pasted = self.nuke.nodePaste("%clipboard%")
        self.assertNotEqual(pasted.name(), node.name())
        self.assertNotEqual(pasted["vrmbg_id"].value(), node["vrmbg_id"].value())

    def test_undo_of_a_delete_brings_back_a_working_node(self):
        node = self.node(auto=False)
        node["resolution"].setValue(256)
        self.nuke.delete(node)
        self.nuke.undo()
        node = self.nuke.toNode("VRMBG1")
        self.assertEqual(node["resolution"].value(), 256)
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.client.ops("ensure"))


class BackgroundThreads(NodeCase):
    def test_engine_events_reach_the_node_only_through_the_main_thread(self):
        node = self.node(auto=False)
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.client.ops("ensure"))
        session = self.client.ops("ensure")[0][1]
        errors = []

        def from_reader_thread():
            try:
                self.client.emit({"event": "frame", "session": session, "frame": 1004,
                                  "path": "x", "exact": True, "tier": "final"})
            except Exception as exc:  # a node touched off the main thread raises in the fake
                errors.append(exc)
        worker = threading.Thread(target=from_reader_thread)
        worker.start()
        worker.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.gate(node, 1004), 1.0)  # nothing changed off the main thread
        self.wait_for(lambda: self.gate(node, 1004) == 0.0)



def render_frame(nuke, write, frame: int) -> None:
    """What Nuke does before rendering `frame` of `write`: its beforeFrameRender callbacks."""
    nuke._STATE.frame = frame
    nuke._fire("beforeFrameRenders", write)


class WritesAnywhere(NodeCase):
    """Issue 26 case 1: every VRMBG node above any Write, through the graph, at the right frame."""

    gui = False

    def ensured(self):
        return [c[2] for c in self.client.ops("ensure_frame")]

    def inner_write(self, group_class: str = "Group"):
        """A Group (or gizmo, LiveGroup) holding Input -> Write, as studio write gizmos do."""
        group = getattr(self.nuke.nodes, group_class)()
        with group:
            plate_in = self.nuke.nodes.Input()
            write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"),
                                          inputs=[plate_in])
            self.nuke.nodes.Output(inputs=[plate_in])
        return group, write

    def test_a_write_inside_a_group_gizmo_or_livegroup_ensures_the_matte(self):
        node = self.node()
        self.nuke._define_gizmo("StudioWrite")
        for kind in ("Group", "StudioWrite", "LiveGroup"):
            group, write = self.inner_write(kind)
            self.assertEqual(group.Class(), kind)
            group.setInput(0, self.nuke.nodes.Dot(inputs=[node]))
            render_frame(self.nuke, write, 1004)
        self.assertEqual(self.ensured(), [1004, 1004, 1004])

    def test_nested_groups_and_the_branch_a_switch_shows(self):
        node = self.node()
        other = self.nuke.nodes.Read(file="/x/other.####.exr", first=FIRST, last=LAST)
        switch = self.nuke.nodes.Switch(inputs=[other, node])
        switch["which"].setValue(1)
        outer = self.nuke.nodes.Group(inputs=[switch])
        with outer:
            inner, write = self.inner_write()
            inner.setInput(0, self.nuke.nodes.Input())
            self.nuke.nodes.Output(inputs=[inner])
        render_frame(self.nuke, write, 1002)
        self.assertEqual(self.ensured(), [1002])
        switch["which"].setValue(0)
        render_frame(self.nuke, write, 1003)
        self.assertEqual(self.ensured(), [1002])  # the matte is not shown: not computed

    def test_time_offset_and_frame_hold_give_the_frame_they_show(self):
        node = self.node()
        offset = self.nuke.nodes.TimeOffset(inputs=[node], time_offset=2)
        write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"), inputs=[offset])
        render_frame(self.nuke, write, 1007)
        hold = self.nuke.nodes.FrameHold(inputs=[node], first_frame=1003)
        held = self.nuke.nodes.Write(file=os.path.join(self.tmp, "h.####.exr"), inputs=[hold])
        render_frame(self.nuke, held, 1009)
        self.assertEqual(self.ensured(), [1005, 1003])

    def test_a_retime_below_the_matte_stops_the_render_with_its_name(self):
        node = self.node()
        retime = self.nuke.nodes.Retime(inputs=[node], speed=0.5)
        write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"), inputs=[retime])
        with self.assertRaises(RuntimeError) as raised:
            render_frame(self.nuke, write, 1004)
        self.assertIn("Retime1", str(raised.exception))
        self.assertEqual(self.ensured(), [])


    def test_a_resampled_path_stops_the_render_whatever_the_input_order(self):
        node = self.node()
        kronos = self.nuke.nodes.Kronos(inputs=[node])
        for inputs in ([node, kronos], [kronos, node]):
            merge = self.nuke.nodes.Merge2(inputs=inputs)
            write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"),
                                          inputs=[merge])
            with self.assertRaises(RuntimeError) as raised:
                render_frame(self.nuke, write, 1004)
            self.assertIn("Kronos1", str(raised.exception))

    def test_animated_switch_and_disable_are_read_at_the_frame_walked(self):
        node = self.node()
        other = self.nuke.nodes.Read(file="/x/other.####.exr", first=FIRST, last=LAST)
        switch = self.nuke.nodes.Switch(inputs=[other, node])
        switch["which"].setValueAt(0, 1004)
        switch["which"].setValueAt(1, 1005)
        offset = self.nuke.nodes.TimeOffset(inputs=[switch], time_offset=3)
        write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"), inputs=[offset])
        render_frame(self.nuke, write, 1007)  # the Switch at 1004 shows the other Read
        render_frame(self.nuke, write, 1009)  # at 1006, the matte of 1006
        hold = self.nuke.nodes.FrameHold(inputs=[node], first_frame=1002)
        hold["disable"].setExpression("frame>=1008")
        later = self.nuke.nodes.TimeOffset(inputs=[hold], time_offset=-5)
        held = self.nuke.nodes.Write(file=os.path.join(self.tmp, "h.####.exr"), inputs=[later])
        render_frame(self.nuke, held, 1004)  # the hold at 1009 is disabled: 1009 shows
        self.assertEqual(self.ensured(), [1006, 1009])

    def test_a_vrmbg_nodes_input_render_makes_the_matte_above_it_exact(self):
        upper = self.node()
        lower = self.node()
        lower.setInput(0, self.nuke.nodes.Dot(inputs=[upper]))
        render_frame(self.nuke, lower.node("InputWrite"), 1004)
        self.assertEqual(self.ensured(), [1004])
        (_, source, _, _), = self.client.ops("open")
        self.assertEqual(source, PLATE)  # the upper node's session, not the lower's


class GateInRenders(NodeCase):
    """A frame whose matte is not known valid: black in the viewer, an error in a render."""

    def test_the_viewer_shows_black_and_a_render_in_the_gui_fails(self):
        node = self.node(auto=False)
        self.assertEqual(self.gate(node, 1004), 1.0)
        self.nuke._STATE.executing = True  # a Write renders
        try:
            self.assertEqual(self.gate(node, 1004), 2.0)
            with self.assertRaises(RuntimeError) as raised:
                self.nuke._render(node.node("Gate"), 1004)
        finally:
            self.nuke._STATE.executing = False
        self.assertIn("not valid at this frame", str(raised.exception))

    def test_a_farm_render_of_a_frame_the_walk_missed_fails(self):
        self.nuke._set_gui(False)
        node = self.node()
        with self.assertRaises(RuntimeError) as raised:  # a temporal node pulls frame 1005
            self.nuke._render(node.node("Gate"), 1005)
        self.assertIn("Analyse range", str(raised.exception))
        node.node("Gate").setInput(2, None)  # a node saved before: bound again, it fails too
        self.nuke.delete(node.node("NotValid"))
        self.nuke._STATE.this.append((node, None))
        try:
            self.vrmbg_nuke.callbacks.on_script_load()
        finally:
            self.nuke._STATE.this.pop()
        with self.assertRaises(RuntimeError):
            self.nuke._render(node.node("Gate"), 1005)


class StaleGraph(NodeCase):
    """Issue 26 case 2: the graph above the node is part of what makes a matte valid."""

    def test_a_reconnected_input_hides_the_mattes_with_follow_off_and_the_panel_closed(self):
        node = self.node(auto=False)
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.gate(node, FIRST) == 0.0)
        other = self.nuke.nodes.Read(file="/shots/sh020/sh020.####.exr", first=FIRST, last=LAST)
        self.nuke._user_connect(node, 0, other)  # no knobChanged: the panel is closed
        self.nuke.frame(FIRST)  # updateUI
        self.assertEqual(self.gate(node, FIRST), 1.0)
        self.assertEqual(len(self.client.ops("open")), 1)  # nothing started: follow is off

    def test_a_change_above_a_dot_hides_the_mattes(self):
        dot = self.nuke.nodes.Dot(inputs=[self.read])
        node = self.node(auto=False)
        node.setInput(0, dot)
        controller = self.controller.controller_for(node)
        plate = controller.prepare(node)
        controller.rendered.update(range(FIRST, LAST + 1))  # as if rendered for the engine
        node["analyse_frame"].execute()
        self.wait_for(lambda: self.gate(node, FIRST) == 0.0)
        self.read["file"].setValue(PLATE.replace("sh010", "sh010_v002"))  # panel closed
        self.nuke.frame(FIRST)
        self.assertEqual(self.gate(node, FIRST), 1.0)
        self.assertFalse(plate.direct)


    def test_input_rendered_in_other_colour_settings_is_not_reused(self):
        from vrmbg_nuke import pixels_in
        node = self.node(auto=False, cache_dir=tempfile.mkdtemp(dir=self.tmp))
        node.setInput(0, self.nuke.nodes.Dot(inputs=[self.read]))
        controller = self.controller.controller_for(node)
        plate = controller.prepare(node)
        pixels_in._save_record(plate, controller._signature(node)[1], {FIRST, FIRST + 1})
        root = self.nuke.root()
        root["OCIO_config"].setValue("fn-nuke_studio-config-v1.0.0_aces-v1.3_ocio-v2.1")
        controller.prepare(node)
        self.assertEqual(controller.rendered, set())
        root["OCIO_config"].setValue("fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1")
        controller.prepare(node)
        self.assertEqual(controller.rendered, {FIRST, FIRST + 1})

    def test_a_frame_rewritten_in_place_changes_the_fingerprint(self):
        from vrmbg_nuke import upstream
        folder = tempfile.mkdtemp(dir=self.tmp)
        for frame in (1, 2, 3):
            with open(os.path.join(folder, f"p.{frame:04d}.exr"), "w") as handle:
                handle.write("pixels")
        read = self.nuke.nodes.Read(file=os.path.join(folder, "p.####.exr"), first=1, last=3)
        before = upstream.fingerprint(read)
        with open(os.path.join(folder, "p.0002.exr"), "w") as handle:  # a partial re-render
            handle.write("new pixels")
        self.assertNotEqual(upstream.fingerprint(read), before)

    def test_the_input_record_is_written_whole_and_never_through_a_link(self):
        from vrmbg_nuke import pixels_in
        folder, elsewhere = tempfile.mkdtemp(dir=self.tmp), tempfile.mkdtemp(dir=self.tmp)
        target = os.path.join(elsewhere, "precious.json")
        with open(target, "w") as handle:
            handle.write("{}")
        os.symlink(target, os.path.join(folder, "input.json"))
        plate = pixels_in.Plate(os.path.join(folder, "input.####.exr"), FIRST, LAST, False)
        pixels_in._save_record(plate, "graph", {FIRST})
        with open(target) as handle:
            self.assertEqual(handle.read(), "{}")
        self.assertFalse(os.path.islink(os.path.join(folder, "input.json")))
        self.assertEqual(pixels_in.rendered_frames(plate, "graph"), {FIRST})
        self.assertEqual(os.listdir(folder), ["input.json"])


class DagErrors(NodeCase):
    """Issue 26 case 6: a failing node shows in the DAG (tile colour, label)."""

    def label(self, node) -> str:
        self.nuke._STATE.this.append((node, None))
        try:
            return self.nuke.autolabel()
        finally:
            self.nuke._STATE.this.pop()

    def test_an_error_colours_and_labels_the_tile_until_fixed(self):
        self.read.setSelected(False)
        node = self.node()
        node["analyse_frame"].execute()
        self.assertNotEqual(node["tile_color"].value(), 0)
        self.assertIn("ERROR: connect a plate", self.label(node))
        self.nuke._user_connect(node, 0, self.read)
        node["analyse_frame"].execute()
        self.wait_for(lambda: node["tile_color"].value() == 0)
        self.assertNotIn("ERROR", self.label(node))

    def test_an_artists_own_tile_colour_is_left_alone(self):
        self.read.setSelected(False)
        node = self.node()
        node["tile_color"].setValue(0x00FF00FF)
        node["analyse_frame"].execute()
        self.assertEqual(node["tile_color"].value(), 0x00FF00FF)
        self.assertIn("ERROR", self.label(node))


class OpeningStartsNothing(NodeCase):
    """Issue 26 case 7: opening a script starts no engine until the node is viewed or edited."""

    def test_a_reopened_script_waits_for_the_panel(self):
        self.node()
        script = os.path.join(self.tmp, "open me.nk")
        self.nuke.scriptSaveAs(script)
        self.nuke.scriptClear()
        self.client.calls.clear()
        self.nuke.scriptOpen(script)
        self.nuke._process_main_thread()
        self.nuke.frame(1003)
        self.nuke._process_main_thread(0.2)
        self.assertEqual(self.client.calls, [])
        node = self.nuke.toNode("VRMBG1")
        node.showControlPanel()  # the artist views the node
        self.wait_for(lambda: self.client.ops("ensure"))
        self.assertEqual(self.client.ops("ensure")[0][2], 1003)


class WhatNukeAllows(NodeCase):
    """Issue 26 case 8: the fake refuses what Nuke refuses, and the node never does it."""

    gui = False

    def test_nuke_execute_inside_a_render_callback_is_refused(self):
        inner = self.nuke.nodes.Write(file=os.path.join(self.tmp, "i.####.exr"), inputs=[self.read])
        outer = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"), inputs=[self.read])
        outer["disable"].setValue(False)
        self.nuke.addBeforeFrameRender(lambda: self.nuke.execute(inner, 1001, 1001))
        with self.assertRaises(RuntimeError) as raised:
            self.nuke.execute(outer, 1001, 1001)
        self.assertIn("already executing", str(raised.exception))

    def test_an_input_not_rendered_yet_stops_the_render_with_the_fix(self):
        dot = self.nuke.nodes.Dot(inputs=[self.read])
        node = self.node()
        node.setInput(0, dot)
        write = self.nuke.nodes.Write(file=os.path.join(self.tmp, "o.####.exr"), inputs=[node])
        with self.assertRaises(RuntimeError) as raised:
            render_frame(self.nuke, write, 1003)
        self.assertIn("Analyse range", str(raised.exception))
        self.assertIn("VRMBG1", str(raised.exception))
        self.assertEqual(self.client.ops("ensure_frame"), [])

    def test_a_group_loaded_before_its_inner_nodes_binds_after_the_load(self):
        self.node(matte_layer="holdout")
        self.nuke.nodeCopy("%clipboard%")
        script = os.path.join(self.tmp, "order.nk")
        self.nuke.scriptSaveAs(script)
        self.nuke.scriptClear()
        self.nuke.scriptOpen(script)  # onCreate ran before MatteCopy existed: no error
        node = self.nuke.toNode("VRMBG1")
        self.assertEqual(node.node("MatteCopy")["to0"].value(), "holdout.alpha")


class RenderWaits(NodeCase):
    """Issue 26 case 3: a render waits with progress, Cancel and a timeout."""

    def setUp(self) -> None:
        super().setUp()
        self.client.frame_gate = threading.Event()

    def test_a_render_that_hears_nothing_fails_after_the_timeout(self):
        node = self.node(auto=False)
        self.controller.RENDER_STALL_SECONDS = 0.5
        try:
            with self.assertRaises(RuntimeError) as raised:
                self.controller.controller_for(node).ensure_for_render(node, 1003)
        finally:
            self.controller.RENDER_STALL_SECONDS = 600.0
        self.assertIn("no word from the engine", str(raised.exception))
        self.assertTrue(self.client.ops("cancel"))

    def test_cancel_on_the_progress_bar_fails_the_render(self):
        node = self.node(auto=False)
        tasks = self.nuke.ProgressTask._instances

        def press_cancel():
            for _ in range(500):
                if tasks and "frame 1003" in tasks[-1]._title:
                    tasks[-1]._cancel()
                    return
                threading.Event().wait(0.01)
        threading.Thread(target=press_cancel, daemon=True).start()
        with self.assertRaises(RuntimeError) as raised:
            self.controller.controller_for(node).ensure_for_render(node, 1003)
        self.assertIn("cancelled", str(raised.exception))
        self.assertIn("cancelled", node["status"].value())


class SlicedInput(NodeCase):
    """Issue 26 case 3: input frames for the playhead render in slices, never all at once."""

    def test_a_jump_renders_the_input_in_slices_with_a_progress_bar(self):
        from vrmbg_nuke import pixels_in
        dot = self.nuke.nodes.Dot(inputs=[self.read])
        node = self.node()
        node.setInput(0, dot)
        runs = []
        saved = pixels_in.render_input
        pixels_in.render_input = lambda g, p, a, b, done: (runs.append((a, b)),
                                                           done.update(range(a, b + 1)))
        try:
            self.nuke.frame(LAST)
            self.assertEqual(runs, [])  # nothing rendered inside updateUI
            while not runs:  # one turn of the event loop at a time
                self.assertEqual(self.nuke._process_main_thread(0.5, limit=1), 1)
            self.assertEqual(runs, [(FIRST, FIRST + pixels_in.SLICE_FRAMES - 1)])
            self.assertTrue(self.nuke.ProgressTask._instances)
            self.wait_for(lambda: self.client.ops("ensure"))
        finally:
            pixels_in.render_input = saved
        self.assertEqual(runs[-1][1], LAST)
        self.assertEqual(self.client.ops("ensure")[0][2], LAST)

    def test_cancel_stops_the_input_render(self):
        from vrmbg_nuke import pixels_in
        dot = self.nuke.nodes.Dot(inputs=[self.read])
        node = self.node()
        node.setInput(0, dot)
        saved = pixels_in.render_input
        pixels_in.render_input = lambda g, p, a, b, done: done.update(range(a, b + 1))
        try:
            self.nuke.frame(LAST)
            for _ in range(20):
                if self.nuke.ProgressTask._instances:
                    break
                self.nuke._process_main_thread(0.01, limit=1)
            self.nuke.ProgressTask._instances[-1]._cancel()
            self.nuke._process_main_thread(0.2)
        finally:
            pixels_in.render_input = saved
        self.assertEqual(self.client.ops("ensure"), [])


    def test_a_changed_graph_stops_the_old_input_render_and_its_record(self):
        from vrmbg_nuke import pixels_in
        node = self.node(auto=False, cache_dir=tempfile.mkdtemp(dir=self.tmp))
        node.setInput(0, self.nuke.nodes.Dot(inputs=[self.read]))
        runs = []
        saved = pixels_in.render_input
        pixels_in.render_input = lambda g, p, a, b, done: (runs.append((a, b)),
                                                           done.update(range(a, b + 1)))
        try:
            node["analyse_range"].execute()
            while not runs:
                self.assertEqual(self.nuke._process_main_thread(0.5, limit=1), 1)
            record = os.path.join(os.path.dirname(
                self.controller.controller_for(node)._plate().pattern), "input.json")
            with open(record) as handle:
                first = json.load(handle)
            self.read["file"].setValue(PLATE.replace("sh010", "sh010_v002"))  # panel closed
            self.nuke._process_main_thread(0.2)
        finally:
            pixels_in.render_input = saved
        self.assertEqual(len(runs), 1)
        with open(record) as handle:
            self.assertEqual(json.load(handle), first)
        self.assertEqual(self.client.ops("ensure"), [])


class CacheBesideTheScript(NodeCase):
    """Issue 26 cases 5 and 16 (Nuke side): the cache folder a farm task finds."""

    gui = False

    def setUp(self) -> None:
        super().setUp()
        self._env = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "VRMBG_CACHE")}
        os.environ["XDG_CACHE_HOME"] = os.path.join(self.tmp, "user cache")
        os.environ.pop("VRMBG_CACHE", None)

    def tearDown(self) -> None:
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        super().tearDown()

    def cache_dir(self, node) -> str:
        self.controller.controller_for(node).ensure_for_render(node, 1001)
        return self.client.ops("open")[-1][2]["cache_dir"]

    def test_unsaved_uses_the_user_cache_and_saved_goes_beside_the_script(self):
        node = self.node()
        self.assertEqual(self.cache_dir(node), os.path.join(self.tmp, "user cache", "vrmbg"))
        folder = os.path.join(self.tmp, "shot")
        os.makedirs(folder, exist_ok=True)
        self.nuke.scriptSaveAs(os.path.join(folder, "comp.nk"))
        self.assertEqual(self.cache_dir(node), os.path.join(folder, "vrmbg-cache"))
        node["cache_dir"].setValue(os.path.join(self.tmp, "shared"))
        self.assertEqual(self.cache_dir(node), os.path.join(self.tmp, "shared"))

    def test_rendered_input_moves_beside_the_script_on_first_save(self):
        from vrmbg_nuke import pixels_in
        node = self.node()
        relative = pixels_in.input_folder(node, node["vrmbg_id"].value())
        before = os.path.join(self.tmp, "user cache", "vrmbg", relative)
        os.makedirs(before)
        with open(os.path.join(before, "input.1001.exr"), "wb") as handle:
            handle.write(b"pixels")
        folder = os.path.join(self.tmp, "first save")
        os.makedirs(folder)
        self.nuke.scriptSaveAs(os.path.join(folder, "comp.nk"))
        self.assertTrue(os.path.isfile(os.path.join(folder, "vrmbg-cache", relative,
                                                    "input.1001.exr")))

    def test_a_home_folder_cache_is_refused_before_anything_is_written(self):
        node = self.node(cache_dir=os.path.expanduser("~"))
        with self.assertRaises(RuntimeError) as raised:
            self.controller.controller_for(node).ensure_for_render(node, 1001)
        self.assertIn("home folder", str(raised.exception))
        self.assertEqual(self.client.ops("open"), [])


class CacheAndPlatform(NodeCase):
    """Issue 26 cases 16 and 17 (Nuke side): prune from the node; one line on Windows."""

    def test_prune_cache_reaches_the_engine(self):
        node = self.node(auto=False)
        node["prune_cache"].execute()
        self.wait_for(lambda: any(c[0] == "prune" for c in self.client.calls))

    def test_on_windows_the_node_says_so_in_one_line(self):
        from vrmbg_nuke.plugin import platform_check
        saved = platform_check.unsupported_platform
        platform_check.unsupported_platform = lambda platform=None: "not on Windows"
        try:
            self.assertIsNone(self.vrmbg_nuke.create_node())
        finally:
            platform_check.unsupported_platform = saved
        self.assertEqual(self.nuke._STATE.messages, ["VRMBG: not on Windows"])
        self.assertEqual(self.client.calls, [])


class KeyframeCase(NodeCase):
    """Issue 28: correction keyframes from the node's keys input, set and removed on the node."""

    def setUp(self) -> None:
        super().setUp()
        self.cache = tempfile.mkdtemp(dir=self.tmp)
        self.roto = self.nuke.nodes.Read(file="/shots/sh010/roto/roto.####.exr", first=FIRST,
                                         last=LAST)
        self.written = []
        saved = self.nuke._write_frame

        def write_frame(write, frame):  # what the keys input shows at `frame`, as text
            path = self.nuke._expand(write["file"].value(), frame)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f"{self.roto['file'].value()} {frame}")
            self.written.append((write.name(), write["channels"].value(), frame))
        self.nuke._write_frame = write_frame
        self.addCleanup(setattr, self.nuke, "_write_frame", saved)

    def keyed(self, **values):
        node = self.node(cache_dir=self.cache, **values)
        node.setInput(1, self.roto)
        return node

    def press(self, node, name: str, frame: int) -> None:
        self.nuke._STATE.frame = frame
        node[name].execute()

    def key_folder(self, node) -> str:
        from vrmbg_nuke import keys
        return os.path.join(self.cache, keys.folder(node, node["vrmbg_id"].value()))

    def key_files(self, node):
        found = os.listdir(self.key_folder(node)) if os.path.isdir(self.key_folder(node)) else []
        return sorted(n for n in found if n.startswith("key."))

    def asked(self, node, frame: int) -> str:
        """The `keyframes` setting the engine is asked for when `frame` is rendered."""
        self.controller.controller_for(node).ensure_for_render(node, frame)
        return self.client.ops("open")[-1][2]["keyframes"]


class Keyframes(KeyframeCase):
    gui = False  # only the actions under test ask the engine

    def test_set_and_remove_update_the_list_the_files_and_the_engine(self):
        node = self.keyed()
        pattern = os.path.join(self.key_folder(node), "key.####.exr")
        self.assertEqual(self.asked(node, 1008), pattern)  # always: a first key keeps the chain
        self.press(node, "set_keyframe", 1007)
        self.press(node, "set_keyframe", 1004)
        self.assertEqual(node["keyframe_list"].value(), "1004,1007")
        self.assertEqual(self.key_files(node), ["key.1004.exr", "key.1007.exr"])
        self.assertEqual(self.written, [("KeyWrite", "alpha", 1007), ("KeyWrite", "alpha", 1004)])
        self.assertIn("keyframes: 1004, 1007", node["status"].value())
        self.assertEqual(self.asked(node, 1008), pattern)
        self.press(node, "remove_keyframe", 1004)
        self.assertEqual(node["keyframe_list"].value(), "1007")
        self.assertEqual(self.key_files(node), ["key.1007.exr"])
        self.assertEqual(self.asked(node, 1008), pattern)
        self.press(node, "remove_keyframe", 1007)
        self.assertEqual((node["keyframe_list"].value(), self.key_files(node)), ("", []))
        self.assertEqual(self.asked(node, 1008), pattern)
        self.assertNotIn("keyframes:", node["status"].value())
        self.assertEqual(len(self.written), 2)  # nothing rendered but the keyframes set

    def test_an_edited_keyframe_stops_a_render_until_it_is_rendered_again(self):
        node = self.keyed()
        self.press(node, "set_keyframe", 1004)
        write = self.nuke.nodes.Write(file=os.path.join(self.cache, "o.####.exr"), inputs=[node])
        self.nuke.execute(write, 1005, 1005)
        opened = len(self.client.ops("open"))
        self.roto["file"].setValue("/shots/sh010/roto/roto_v002.####.exr")  # the artist edits
        with self.assertRaises(RuntimeError) as raised:
            self.nuke.execute(write, 1005, 1005)
        self.assertIn("VRMBG1", str(raised.exception))
        self.assertIn("keyframe 1004", str(raised.exception))
        self.assertIn("Set keyframe here", str(raised.exception))
        self.assertEqual([c[2] for c in self.client.ops("ensure_frame")], [1005])
        self.nuke.execute(write, 1003, 1003)  # before the keyframe: its matte does not change
        self.press(node, "analyse_frame", 1005)  # outside a render: the key is rendered again
        self.wait_for(lambda: self.client.ops("ensure"))
        with open(os.path.join(self.key_folder(node), "key.1004.exr"), encoding="utf-8") as handle:
            self.assertEqual(handle.read(), "/shots/sh010/roto/roto_v002.####.exr 1004")
        self.assertGreater(len(self.client.ops("open")), opened)  # the engine asked anew
        self.nuke.execute(write, 1005, 1005)
        os.remove(os.path.join(self.key_folder(node), "key.1004.exr"))
        with self.assertRaises(RuntimeError) as raised:
            self.nuke.execute(write, 1006, 1006)
        self.assertIn("keyframe 1004", str(raised.exception))

    def test_a_typed_keyframes_path_wins_and_a_list_needs_the_keys_input(self):
        node = self.keyed(keyframes="/shots/sh010/key/key.####.exr")
        self.press(node, "set_keyframe", 1004)
        self.assertEqual(self.asked(node, 1005), "/shots/sh010/key/key.####.exr")
        self.assertEqual(self.written, [])
        node["keyframes"].setValue("")
        node.setInput(1, None)
        with self.assertRaises(RuntimeError) as raised:
            self.asked(node, 1005)
        self.assertIn("keys input", str(raised.exception))
        node["keyframe_list"].setValue("1004-")
        self.press(node, "set_keyframe", 1006)
        self.assertEqual(node["keyframe_list"].value(), "1004-")  # the artist's text stays
        self.assertIn("bad frame range item '1004-'", node["status"].value())

    def test_key_files_are_never_written_through_a_link(self):
        node = self.keyed()
        elsewhere = tempfile.mkdtemp(dir=self.tmp)
        os.symlink(elsewhere, os.path.join(self.cache, "nuke-keys"))
        self.press(node, "set_keyframe", 1004)
        self.assertIn("is a link", node["status"].value())
        self.assertEqual((os.listdir(elsewhere), self.written), ([], []))
        with self.assertRaises(RuntimeError) as raised:
            self.asked(node, 1005)  # the key was not written: a render stops
        self.assertIn("keyframe 1004", str(raised.exception))

    def test_a_linked_node_key_folder_is_refused_before_anything_is_made(self):
        node = self.keyed()
        elsewhere = tempfile.mkdtemp(dir=self.tmp)
        os.makedirs(os.path.dirname(self.key_folder(node)))
        os.symlink(elsewhere, self.key_folder(node))
        self.press(node, "set_keyframe", 1004)
        self.assertIn("is a link", node["status"].value())
        self.assertEqual((os.listdir(elsewhere), self.written), ([], []))

    def test_a_group_made_before_keyframes_gains_the_keys_input_when_opened(self):
        node = self.node()
        for name in ("Keys", "KeyCopy", "KeyWrite"):
            self.nuke.delete(node.node(name))
        for name in ("tab_keyframes", "set_keyframe", "remove_keyframe", "keyframe_list"):
            node.removeKnob(node[name])
        self.assertEqual(node.maxInputs(), 1)
        script = os.path.join(self.tmp, "before keyframes.nk")
        self.nuke.scriptSaveAs(script)
        self.nuke.scriptClear()
        self.nuke.scriptOpen(script)
        node = self.nuke.toNode("VRMBG1")
        self.assertEqual((node.maxInputs(), node.node("Keys")["number"].value()), (2, 1))
        self.roto = self.nuke.nodes.Read(file="/r/roto.####.exr", first=FIRST, last=LAST)
        node.setInput(1, self.roto)
        node["cache_dir"].setValue(self.cache)
        self.press(node, "set_keyframe", 1002)
        self.assertEqual(self.key_files(node), ["key.1002.exr"])



class KeyframesShown(KeyframeCase):
    def test_an_edited_keyframe_hides_the_frames_from_it_on_until_rendered_again(self):
        node = self.keyed(auto=False)
        self.press(node, "set_keyframe", 1004)
        node["analyse_range"].execute()
        self.wait_for(lambda: self.gate(node, LAST) == 0.0)
        self.roto["file"].setValue("/shots/sh010/roto/roto_v002.####.exr")  # panel closed
        self.nuke.frame(1002)  # updateUI
        self.nuke._process_main_thread()
        self.assertEqual([self.gate(node, f) for f in (1003, 1004, LAST)], [0.0, 1.0, 1.0])
        self.assertEqual(len(self.written), 1)  # nothing rendered inside updateUI
        node["analyse_range"].execute()
        self.wait_for(lambda: self.gate(node, LAST) == 0.0)
        self.assertEqual([w[2] for w in self.written], [1004, 1004])


if __name__ == "__main__":
    unittest.main()
