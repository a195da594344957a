"""The VRMBG Nuke node's own behaviour, in the fake `nuke` with a client double.

Plain unittest and standard library only: `test_nuke_py39.py` runs this file under Python 3.9
(Nuke 14's Python) as well. End-to-end behaviour with the real worker and the demo model is in
`test_nuke_engine.py`.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    unittest.main()
