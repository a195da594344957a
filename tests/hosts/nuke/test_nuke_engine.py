"""The Nuke node end to end: the fake `nuke`, the folder `vrmbg install nuke` writes, the real
worker (through the real client) and the bundled demo model, on a generated EXR shot.

What a compositor relies on: the mattes the node's internal Read shows are bit for bit those of
`vrmbg render`'s straight run with the same settings, whether the frames came from Analyse
range, from following the playhead, after a cancel, after the worker was killed mid-range, after
reopening the script, or from a headless render in any frame order; and a broken engine fails
the render with its reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import OpenImageIO as oiio
import pytest

from nuke_harness import build_folder, make_read, new_vrmbg, pump, start_nuke, stop_nuke, \
    use_cg_config
from vrmbg.core.demo import shot_files, synth

pytestmark = pytest.mark.slow

FIRST, COUNT = 1001, 12
LAST = FIRST + COUNT - 1
CG_CONFIG = "ocio://cg-config-v1.0.0_aces-v1.3_ocio-v2.1"  # Nuke's fn-nuke_cg-config-v1.0.0_...
TIMEOUT = 300.0


def read_channel(path: str, channel: str = "A") -> np.ndarray:
    """One channel of an EXR over its display window, exactly as stored."""
    buf = oiio.ImageBuf(path)
    assert not buf.has_error, buf.geterror()
    names = list(buf.spec().channelnames)
    pixels = buf.get_pixels(oiio.FLOAT, buf.roi_full)
    return pixels[..., names.index(channel)]


def frame_file(pattern: str, frame: int) -> str:
    return pattern.replace("####", f"{frame:04d}")


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> str:
    """A synthetic ACEScg shot (half EXR) in a folder whose name has a space."""
    folder = tmp_path_factory.mktemp("shots") / "sh 010"
    shot = synth.generate_shot(7, frames=COUNT, width=64, height=48, first_frame=FIRST)
    return shot_files.write_shot(shot, str(folder), name="sh010").plate


@pytest.fixture(scope="module")
def reference_run(shot, tmp_path_factory) -> tuple:
    """`vrmbg render`'s straight run of the shot with the node's settings:
    ({frame: alpha}, the cache folder it kept)."""
    out = tmp_path_factory.mktemp("reference")
    pattern = str(out / "matte.####.exr")
    command = [sys.executable, "-m", "vrmbg.core", "render", shot, "-o", pattern,
               "--model", "demo", "--device", "cpu", "--ocio", CG_CONFIG,
               "--input-colorspace", "ACEScg", "--cache-dir", str(out / "cache")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    mattes = {f: read_channel(frame_file(pattern, f)) for f in range(FIRST, LAST + 1)}
    return mattes, str(out / "cache")


@pytest.fixture(scope="module")
def reference(reference_run) -> dict:
    return reference_run[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return build_folder(str(tmp_path_factory.mktemp("install")))


def _nuke_session(folder: str, gui: bool):
    """A session with the script on OCIO (Nuke's cg config) and the shot's frame range."""
    nuke, vrmbg_nuke = start_nuke(folder, gui=gui)
    _script_defaults(nuke)
    yield nuke, vrmbg_nuke
    stop_nuke()


@pytest.fixture
def session(folder):
    """A GUI session."""
    yield from _nuke_session(folder, True)


def _script_defaults(nuke) -> None:
    use_cg_config(nuke)
    nuke.root()["first_frame"].setValue(FIRST)
    nuke.root()["last_frame"].setValue(LAST)
    nuke._STATE.frame = FIRST


def vrmbg_node(nuke, vrmbg_nuke, shot: str, cache: str, **values):
    """Read on the shot ('default (ACEScg)', as Nuke shows an ACEScg EXR) and a VRMBG under it."""
    read = make_read(nuke, shot, FIRST, LAST, "default (ACEScg)")
    node = new_vrmbg(nuke, vrmbg_nuke, model="demo", device="cpu", cache_dir=cache, **values)
    assert node.input(0) is read
    return node


def controller(node):
    from vrmbg_nuke.controller import controller_for
    return controller_for(node)


def shown(nuke, node, frame: int):
    """The matte the node shows at `frame` (None when its gate shows black)."""
    saved = nuke._STATE.frame
    nuke._STATE.frame = frame
    try:
        if node.node("Gate")["which"].value() != 0.0:
            return None
    finally:
        nuke._STATE.frame = saved
    return read_channel(frame_file(node.node("MatteRead")["file"].value(), frame))


def assert_exact(nuke, node, reference: dict, frames) -> None:
    for frame in frames:
        matte = shown(nuke, node, frame)
        assert matte is not None, f"frame {frame} is not shown"
        assert np.array_equal(matte, reference[frame]), f"frame {frame} differs"


def analysed(nuke, node, count: int) -> None:
    """Pump the main thread until the node's analysis is over with `count` frames cached."""
    pump(nuke, lambda: controller(node).task is None and
         f"{count} of {COUNT} frames cached" in node["status"].value(), TIMEOUT)


def test_analyse_range_matches_a_straight_render_and_survives_reopening(
        session, folder, shot, reference, tmp_path):
    nuke, vrmbg_nuke = session
    node = vrmbg_node(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"), auto=False)
    node["analyse_range"].execute()
    analysed(nuke, node, COUNT)
    assert_exact(nuke, node, reference, range(FIRST, LAST + 1))
    task = nuke.ProgressTask._instances[-1]
    assert task._progress[-1] == 100
    status = node["status"].value()
    assert "cpu" in status and "s/frame" in status and "last error" not in status

    script = str(tmp_path / "comp v01.nk")
    nuke.scriptSaveAs(script)
    stop_nuke()  # Nuke quits: the worker goes with it
    nuke, vrmbg_nuke = start_nuke(folder, gui=True)
    nuke.scriptOpen(script)
    nuke._STATE.frame = FIRST
    node = nuke.toNode("VRMBG1")
    assert shown(nuke, node, FIRST) is None  # nothing shown before the engine vouches for it
    nuke._user_set(node["auto"], True)  # the artist opens the panel: nothing ran before
    nuke.frame(LAST)
    pump(nuke, lambda: shown(nuke, node, LAST) is not None, TIMEOUT)
    assert_exact(nuke, node, reference, range(FIRST, LAST + 1))


def test_following_the_playhead_computes_forward_without_blocking(
        session, shot, reference, tmp_path):
    nuke, vrmbg_nuke = session
    node = vrmbg_node(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"))
    nuke.frame(1006)
    assert shown(nuke, node, 1006) is None  # the frame change returned before the matte
    pump(nuke, lambda: all(shown(nuke, node, f) is not None for f in range(FIRST, 1007)),
         TIMEOUT)  # the frames computed on the way to 1006 are cached and shown too
    assert_exact(nuke, node, reference, range(FIRST, 1007))
    nuke.frame(1009)
    nuke.frame(1004)  # already cached: shown at once, exact
    assert_exact(nuke, node, reference, [1004])
    pump(nuke, lambda: shown(nuke, node, 1009) is not None, TIMEOUT)
    assert_exact(nuke, node, reference, [1009])


def analysing(nuke, vrmbg_nuke, shot: str, cache: str):
    """A node whose Analyse range is running and has finished its first frame."""
    node = vrmbg_node(nuke, vrmbg_nuke, shot, cache, auto=False)
    node["analyse_range"].execute()
    pump(nuke, lambda: controller(node).matte.valid, TIMEOUT)
    return node


def test_cancel_keeps_finished_frames_and_a_rerun_completes_exactly(
        session, shot, reference, tmp_path):
    nuke, vrmbg_nuke = session
    node = analysing(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"))
    nuke.ProgressTask._instances[-1]._cancel()
    pump(nuke, lambda: controller(node).task is None, TIMEOUT)
    done = sorted(controller(node).matte.valid)
    assert "Stopped: " in node["status"].value()
    assert 0 < len(done) < COUNT
    assert_exact(nuke, node, reference, done)
    assert shown(nuke, node, LAST) is None
    node["analyse_range"].execute()
    analysed(nuke, node, COUNT)
    assert_exact(nuke, node, reference, range(FIRST, LAST + 1))


def test_a_worker_killed_mid_range_is_restarted_and_the_range_completes_exactly(
        session, shot, reference, tmp_path):
    nuke, vrmbg_nuke = session
    node = analysing(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"))
    client = vrmbg_nuke.controller.get_client()
    first_pid = client.pid
    os.kill(first_pid, signal.SIGKILL)
    analysed(nuke, node, COUNT)
    assert client.pid != first_pid
    assert "engine stopped" in node["status"].value()
    assert_exact(nuke, node, reference, range(FIRST, LAST + 1))


def test_a_shot_precomputed_by_vrmbg_render_is_read_from_its_cache(
        session, shot, reference_run):
    nuke, vrmbg_nuke = session
    mattes, cache = reference_run
    node = vrmbg_node(nuke, vrmbg_nuke, shot, cache, auto=False)
    events = []
    vrmbg_nuke.controller.get_client().add_listener(events.append)
    node["analyse_range"].execute()
    analysed(nuke, node, COUNT)
    computing = [e for e in events if e.get("event") == "progress" and
                 e.get("stage") == "computing" and e.get("frame") is not None]
    assert computing == []  # every frame came from the render's cache
    assert_exact(nuke, node, mattes, range(FIRST, LAST + 1))


def test_two_nodes_share_one_worker(session, shot, reference, tmp_path):
    nuke, vrmbg_nuke = session
    one = vrmbg_node(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"), auto=False,
                     frame_range="1001-1002")
    two = vrmbg_node(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"), auto=False,
                     frame_range="1001-1003")
    one["analyse_range"].execute()
    two["analyse_range"].execute()
    pump(nuke, lambda: {1001, 1002} <= controller(one).matte.valid and
         {1001, 1002, 1003} <= controller(two).matte.valid, TIMEOUT)
    status = vrmbg_nuke.controller.get_client().status()
    sessions = {controller(one).matte.session, controller(two).matte.session}
    assert sessions <= set(status["sessions"])
    assert_exact(nuke, two, reference, [1001, 1002, 1003])


@pytest.fixture
def farm(folder):
    """`nuke -x`: no GUI, no menus; the script's Write renders frames."""
    yield from _nuke_session(folder, False)


def farm_script(nuke, vrmbg_nuke, shot, tmp_path, through_dot: bool = False, **values):
    read = make_read(nuke, shot, FIRST, LAST, "default (ACEScg)")
    if through_dot:  # not a Read: the node renders its input for the engine
        dot = nuke.nodes.Dot(inputs=[read])
        read.setSelected(False)
        dot.setSelected(True)
    settings = dict(model="demo", device="cpu", cache_dir=str(tmp_path / "cache"))
    settings.update(values)
    node = new_vrmbg(nuke, vrmbg_nuke, **settings)
    out = str(tmp_path / "out" / "comp.####.exr")
    write = nuke.nodes.Write(file=out, inputs=[node])
    write["channels"].setValue("rgba")
    write["datatype"].setValue("32 bit float")
    write["create_directories"].setValue(True)
    return write, out


@pytest.mark.parametrize("through_dot", [False, True], ids=["read", "rendered input"])
def test_a_headless_render_is_exact_in_any_frame_order(farm, shot, reference, tmp_path,
                                                       through_dot):
    nuke, vrmbg_nuke = farm
    write, out = farm_script(nuke, vrmbg_nuke, shot, tmp_path, through_dot)
    order = [1009, 1003, 1004, 1012] if not through_dot else [1006, 1002]
    if through_dot:  # Nuke renders one thing at a time: the input is rendered beforehand
        with pytest.raises(RuntimeError) as raised:
            nuke.execute(write, 1006, 1006)
        assert "Analyse range" in str(raised.value)
        node = nuke.toNode("VRMBG1")
        node["frame_range"].setValue("1001-1006")
        node["analyse_range"].execute()
        pump(nuke, lambda: set(range(FIRST, 1007)) <= controller(node).matte.valid, TIMEOUT)
    for frame in order:
        nuke.execute(write, frame, frame)
    for frame in order:
        path = frame_file(out, frame)
        assert np.array_equal(read_channel(path, "A"), reference[frame]), frame
        plate = read_channel(frame_file(shot, frame), "R")
        assert np.array_equal(read_channel(path, "R"), plate)  # the plate passes through


def test_a_broken_engine_fails_the_render_with_the_reason(farm, shot, tmp_path):
    nuke, vrmbg_nuke = farm
    missing = str(tmp_path / "no such model")
    write, out = farm_script(nuke, vrmbg_nuke, shot, tmp_path, model=missing)
    with pytest.raises(RuntimeError) as raised:
        nuke.execute(write, 1002, 1002)
    assert "no such model" in str(raised.value) and "VRMBG1" in str(raised.value)
    assert not os.path.exists(frame_file(out, 1002))


def test_a_missing_engine_python_fails_the_render_with_the_reason(folder, shot, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("VRMBG_PYTHON", str(tmp_path / "gone" / "python3"))
    nuke, vrmbg_nuke = start_nuke(folder, gui=False)
    try:
        _script_defaults(nuke)
        write, out = farm_script(nuke, vrmbg_nuke, shot, tmp_path)
        with pytest.raises(RuntimeError) as raised:
            nuke.execute(write, 1001, 1001)
        assert "gone" in str(raised.value)
        assert not os.path.exists(frame_file(out, 1001))
    finally:
        stop_nuke()


def test_a_keyframe_changes_the_frames_after_it_and_none_before(session, shot, reference,
                                                                  tmp_path):
    nuke, vrmbg_nuke = session
    node = vrmbg_node(nuke, vrmbg_nuke, shot, str(tmp_path / "cache"), auto=False)
    key = FIRST + 4
    alpha = (1.0 - reference[key]).astype(np.float32)  # the artist's matte: far from the model's
    roto = str(tmp_path / "roto" / "roto.####.exr")
    os.makedirs(os.path.dirname(roto))
    spec = oiio.ImageSpec(alpha.shape[1], alpha.shape[0], 1, oiio.FLOAT)
    spec.channelnames = ("A",)
    out = oiio.ImageOutput.create(frame_file(roto, key))
    assert out.open(frame_file(roto, key), spec) and out.write_image(alpha[..., None])
    out.close()
    node.setInput(1, nuke.nodes.Read(file=roto, first=key, last=key, raw=True))
    nuke._STATE.frame = key
    node["set_keyframe"].execute()  # renders the keys input's alpha at 1005 for the engine
    node["analyse_range"].execute()
    analysed(nuke, node, COUNT)
    assert "keyframes: 1005" in node["status"].value()
    assert_exact(nuke, node, reference, range(FIRST, key))  # before it: untouched
    assert np.array_equal(shown(nuke, node, key), alpha.astype(np.float16).astype(np.float32))
    assert not np.array_equal(shown(nuke, node, key + 1), reference[key + 1])  # continues from it
