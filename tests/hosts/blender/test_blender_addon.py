"""The Blender add-on in real Blender (PyPI `bpy` 5.2 and 4.5), installed from the extension zip
that `vrmbg install blender --zip` builds, talking to the real worker with the demo model.

Each Blender scenario runs as its own process (tests/support/blender_scenarios/, a crash there cannot
take pytest down) with HOME in a temp folder. Rendered alphas are compared with the engine's
mattes and with a straight `vrmbg render` of the same plates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import OpenImageIO as oiio
import pytest

from blender_env import BLENDERS, blender_python
from plate_factory import frame_path, write_exr, write_video
from vrmbg.core.demo.synth import generate_shot
from vrmbg.core.install import build_blender_zip

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "support", "blender_scenarios")
RESULT_MARK = "VRMBG-RESULT "
FIRST, FRAMES, SIZE = 1001, 6, (96, 64)
_ENV_DROP = ("VRMBG_CACHE", "VRMBG_PROGRESS", "OCIO", "VRMBG_PYTHON", "PYTHONPATH")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=sorted(BLENDERS), ids=lambda v: "blender-" + v)
def blender(request) -> str:
    """The python of a venv holding that Blender version as a module (skipped without it)."""
    found = blender_python(request.param)
    if not found.python:
        pytest.skip(found.skip_reason)
    return found.python


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> str:
    """The extension zip exactly as `vrmbg install blender --zip` writes it."""
    return build_blender_zip(str(tmp_path_factory.mktemp("zip") / "vrmbg-blender.zip"),
                             python=sys.executable)


def write_shot(folder: str, frames: int, seed: int = 3) -> str:
    """A generated shot (a moving subject on a background) as half EXRs from 1001."""
    os.makedirs(folder, exist_ok=True)
    shot = generate_shot(seed, frames=frames, width=SIZE[0], height=SIZE[1], first_frame=FIRST)
    pattern = os.path.join(folder, "sh010.####.exr")
    for frame, rgb in zip(shot.frames, shot.rgb):
        write_exr(frame_path(pattern, frame), np.ascontiguousarray(rgb))
    return pattern


@pytest.fixture(scope="session")
def plates(tmp_path_factory) -> str:
    """Six plate frames 1001-1006 in a folder whose name has a space and an accent."""
    return write_shot(str(tmp_path_factory.mktemp("shot") / "plates é 1"), FRAMES)


def render_straight(plates: str, output: str, *extra: str) -> str:
    """`vrmbg render` of the plates with the demo model (extra flags appended); the output."""
    subprocess.run([sys.executable, "-m", "vrmbg.core", "render", plates, "-o", output,
                    "--model", "demo", *extra], check=True, env=engine_env(),
                   capture_output=True)
    return output


@pytest.fixture(scope="module")
def straight(rendered, plates, tmp_path_factory) -> str:
    """A straight `vrmbg render` of the plates read as Blender reads them: its own config and
    the plate image's colour space."""
    colour = rendered["colour"]
    return render_straight(plates, str(tmp_path_factory.mktemp("straight") / "matte.####.exr"),
                           "--ocio", colour["ocio"], "--input-colorspace",
                           colour["input_colorspace"])


def engine_env(**extra: str) -> dict:
    """The environment without anything that would steer vrmbg or Blender."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(extra)
    return env


def run_scenario(python: str, script: str, home: str, timeout: float = 600,
                 **args) -> tuple[subprocess.CompletedProcess, dict]:
    """Run a scenario script in Blender; (the finished process, its result or {})."""
    os.makedirs(home, exist_ok=True)
    arg_file = os.path.join(home, script + ".json")
    with open(arg_file, "w", encoding="utf-8") as out:
        json.dump(args, out)
    done = subprocess.run([python, os.path.join(SCENARIOS, script), arg_file],
                          capture_output=True, text=True, timeout=timeout,
                          env=engine_env(HOME=home, PYTHONNOUSERSITE="1"))
    result = {}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    return done, result


def scenario_ok(done: subprocess.CompletedProcess, result: dict) -> dict:
    """The result, or a failure showing what Blender printed."""
    assert done.returncode == 0 and result, (done.returncode, done.stdout[-3000:],
                                             done.stderr[-3000:])
    return result


def channel(path: str, name: str) -> np.ndarray:
    """One channel of an EXR, chosen by name."""
    image = oiio.ImageInput.open(path)
    assert image is not None, oiio.geterror()
    try:
        spec = image.spec()
        pixels = image.read_image(oiio.FLOAT)
    finally:
        image.close()
    return pixels[..., list(spec.channelnames).index(name)]


def assert_alpha_is_matte(rendered: str, matte: str) -> None:
    """The rendered frame's alpha is the matte, value for value."""
    alpha, expected = channel(rendered, "A"), channel(matte, "A")
    assert alpha.shape == expected.shape
    assert 0.0 < float(expected.mean()) < 1.0  # a real matte: neither empty nor full
    np.testing.assert_array_equal(alpha, expected)


@pytest.fixture(scope="module")
def rendered(blender, extension_zip, plates, tmp_path_factory) -> dict:
    """A .blend with a matte added by script, rendered as stills and as an animation."""
    root = tmp_path_factory.mktemp("render")
    done, result = run_scenario(
        blender, "render_matte.py", str(root / "home"), zip=extension_zip,
        plate_frame=frame_path(plates, 1003), blend=str(root / "shot é.blend"),
        out=str(root / "out"),
        stills=[FIRST - 2, FIRST, FIRST + FRAMES - 1, FIRST + FRAMES + 1], animation=[1002, 1003])
    result = scenario_ok(done, result)
    result["root"] = str(root)
    return result


def test_added_matte_covers_the_plate_and_caches_beside_the_blend(rendered, plates):
    assert (rendered["first"], rendered["last"]) == (FIRST, FIRST + FRAMES - 1)
    assert os.path.realpath(rendered["plate"]) == os.path.realpath(plates)
    assert rendered["model"] == "demo"
    cache = os.path.join(rendered["root"], "vrmbg-cache")
    assert os.path.realpath(rendered["matte_pattern"]).startswith(os.path.realpath(cache))


def test_plate_is_read_in_blenders_config_and_the_images_colour_space(rendered, straight,
                                                                       plates, tmp_path):
    colour = rendered["colour"]
    assert colour["input_colorspace"] == "Linear Rec.709"  # what Blender gives an EXR plate
    assert colour["ocio"].endswith(os.path.join("datafiles", "colormanagement", "config.ocio"))
    aces = render_straight(plates, str(tmp_path / "aces.####.exr"))  # read as ACEScg instead
    differs = [not np.array_equal(channel(frame_path(aces, f), "A"),
                                  channel(frame_path(straight, f), "A"))
               for f in range(FIRST, FIRST + FRAMES)]
    assert all(differs)  # so the matching mattes below show the colour space reached the engine


def test_rendered_stills_have_the_engines_matte_as_alpha(rendered, straight):
    last = FIRST + FRAMES - 1
    for frame, path in rendered["stills"].items():
        shown = min(max(int(frame), FIRST), last)  # outside the shot: the nearest frame
        assert_alpha_is_matte(path, frame_path(rendered["matte_pattern"], shown))
        assert_alpha_is_matte(path, frame_path(straight, shown))


def test_frames_outside_the_shot_show_the_nearest_plate_frame(rendered):
    stills = rendered["stills"]
    for outside, nearest in ((FIRST - 2, FIRST), (FIRST + FRAMES + 1, FIRST + FRAMES - 1)):
        for name in "RGBA":
            np.testing.assert_array_equal(channel(stills[str(outside)], name),
                                          channel(stills[str(nearest)], name))


def test_rendered_animation_has_each_frames_matte(rendered, straight):
    for frame in (1002, 1003):
        path = frame_path(rendered["animation"], frame)
        assert_alpha_is_matte(path, frame_path(rendered["matte_pattern"], frame))
        assert_alpha_is_matte(path, frame_path(straight, frame))
    assert not os.path.exists(frame_path(rendered["animation"], 1004))


def test_reopened_blend_renders_exact_mattes_again_with_an_empty_cache(
        rendered, blender, extension_zip, straight):
    shutil.rmtree(os.path.join(rendered["root"], "vrmbg-cache"))
    root = rendered["root"]
    done, result = run_scenario(
        blender, "reopen_render.py", os.path.join(root, "home-farm"), zip=extension_zip,
        blend=os.path.join(root, "shot é.blend"), out=os.path.join(root, "farm"),
        animation=[1004, 1006])
    result = scenario_ok(done, result)
    assert result["model"] == "demo" and result["auto"] and result["is_matte"]
    for frame in (1004, 1005, 1006):
        assert_alpha_is_matte(frame_path(result["animation"], frame),
                              frame_path(straight, frame))


def test_a_blender_without_the_addon_renders_magenta_and_says_why(rendered, blender):
    root = rendered["root"]
    done, result = run_scenario(
        blender, "no_addon_render.py", os.path.join(root, "home-bare"),
        blend=os.path.join(root, "shot é.blend"), out=os.path.join(root, "bare"),
        animation=[1002, 1003])
    result = scenario_ok(done, result)
    assert result["addon"] == []
    for frame in (1002, 1003):
        path = frame_path(result["animation"], frame)
        for name, value in zip("RGBA", (1.0, 0.0, 1.0, 1.0)):  # no one takes it for a matte
            assert np.all(channel(path, name) == value), (frame, name)
    log = done.stdout + done.stderr
    assert "the VRMBG add-on is not enabled in this Blender" in log, log[-2000:]


def test_frames_analysed_before_the_first_save_move_beside_the_blend(blender, extension_zip,
                                                                     plates, tmp_path):
    home = tmp_path / "home"
    done, result = run_scenario(blender, "first_save.py", str(home), zip=extension_zip,
                                plate_frame=frame_path(plates, 1001),
                                blend=str(tmp_path / "saved" / "shot.blend"))
    result = scenario_ok(done, result)
    assert os.path.realpath(result["unsaved_pattern"]).startswith(os.path.realpath(home))
    beside = os.path.realpath(tmp_path / "saved" / "vrmbg-cache")
    assert os.path.realpath(result["saved_pattern"]).startswith(beside)
    assert result["saved_frames"] == list(range(FIRST, FIRST + FRAMES))
    assert result["after_failed_save"] == "CompositorNodeSetAlpha"  # not left magenta
    assert "(0 computed, %d from cache)" % FRAMES in result["status"], result["status"]
    assert not os.path.exists(os.path.dirname(result["unsaved_pattern"]))  # moved, not copied


def test_add_matte_from_the_ui_returns_at_once_and_the_engine_starts_behind(
        blender, extension_zip, plates, tmp_path):
    done, result = run_scenario(blender, "add_in_background.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=frame_path(plates, 1002),
                                blend=str(tmp_path / "shot.blend"), first=FIRST)
    result = scenario_ok(done, result)
    assert result["added"] == ["FINISHED"]
    assert result["returned_after"] < 1.0 < result["opened_after"], result
    assert "opening the shot" in result["status_at_once"].lower(), result["status_at_once"]
    assert result["frames"] == result["scene_range"] == [FIRST, FIRST + FRAMES - 1]
    assert not result["status"].lower().startswith(("opening", "error")), result["status"]


def test_operators_with_nothing_to_do_give_one_reason_and_start_no_engine(
        blender, extension_zip, plates, tmp_path):
    missing = str(tmp_path / "plates" / "sh010.1001.exr")
    done, result = run_scenario(blender, "operator_messages.py", str(tmp_path / "home"),
                                zip=extension_zip, missing=missing,
                                plate_frame=frame_path(plates, 1001),
                                plates=["/e/sh030.mov", "/p/sh010.1001.exr", "/p/sh_020.####.exr"])
    result = scenario_ok(done, result)
    assert len(result["missing"]) == 1 and "no plate file" in result["missing"][0], result
    assert len(result["windows"]) == 1, result["windows"]  # one line on Windows, no traceback
    assert "Windows is not supported" in result["windows"][0]
    assert len(result["offline"]) == 1, result["offline"]  # a hub model on an offline farm:
    assert "HF_HUB_OFFLINE=1 on the farm" in result["offline"][0]  # the fix, up front
    assert result["stopped"] == result["released"] == ["CANCELLED"]
    assert not result["engine_started"]
    assert result["names"] == {"/e/sh030.mov": "sh030", "/p/sh010.1001.exr": "sh010",
                               "/p/sh_020.####.exr": "sh_020"}


def test_render_stops_with_the_reason_when_the_engine_fails(blender, extension_zip,
                                                            tmp_path):
    plates = write_shot(str(tmp_path / "plates"), 4)
    bad = frame_path(plates, 1003)
    out = tmp_path / "out"
    done, _ = run_scenario(blender, "render_failure.py", str(tmp_path / "home"),
                           zip=extension_zip, plate_frame=frame_path(plates, 1001),
                           blend=str(tmp_path / "shot.blend"), corrupt=bad, out=str(out),
                           animation=[1001, 1004])
    assert done.returncode == 3, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    reason = [line for line in done.stderr.splitlines() if "cannot render frame 1003" in line]
    assert reason and "sh010.1003.exr" in reason[0], done.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["anim.1001.exr", "anim.1002.exr"]


def test_a_changed_setting_renders_its_own_chain(rendered, blender, extension_zip, plates):
    root = rendered["root"]
    done, result = run_scenario(
        blender, "reopen_render.py", os.path.join(root, "home-change"), zip=extension_zip,
        blend=os.path.join(root, "shot é.blend"), out=os.path.join(root, "changed"),
        animation=[1001, 1002], settings={"resolution": 64})
    result = scenario_ok(done, result)
    assert result["matte_pattern"] != rendered["matte_pattern"]
    colour = rendered["colour"]
    smaller = render_straight(plates, os.path.join(root, "straight64", "m.####.exr"),
                              "--resolution", "64", "--ocio", colour["ocio"],
                              "--input-colorspace", colour["input_colorspace"])
    for frame in (1001, 1002):
        assert_alpha_is_matte(frame_path(result["animation"], frame), frame_path(smaller, frame))


@pytest.fixture(scope="module")
def long_plates(tmp_path_factory) -> str:
    """A 30-frame shot: long enough to cancel an analysis part way."""
    return write_shot(str(tmp_path_factory.mktemp("long") / "plates"), 30, seed=5)


def test_analyse_shows_progress_cancels_on_esc_and_resumes(blender, extension_zip,
                                                           long_plates, tmp_path):
    done, result = run_scenario(blender, "analyse_modal.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=frame_path(long_plates, 1010),
                                blend=str(tmp_path / "shot.blend"))
    result = scenario_ok(done, result)
    assert result["frames"] == [1001, 1030]
    assert result["passed_through"] == "PASS_THROUGH"  # other events reach Blender
    assert result["slowest_step"] < 2.0  # a timer tick never waits for the engine
    assert 0 < result["progress_seen"] < 1
    running = result["status_while_running"]  # the session's wording (test_host_session.py)
    assert "of 30)" in running or "loading" in running.lower()
    assert result["cancel_outcome"] == "CANCELLED"
    assert result["status_bar"].startswith("VRMBG sh010: "), result["status_bar"]
    assert result["cancelled_summary"].startswith("Stopped: ")
    cancelled_at = result["done_after_cancel"]
    assert cancelled_at == list(range(1001, 1001 + len(cancelled_at))) and len(cancelled_at) < 30
    assert result["finish_outcome"] == "FINISHED" and result["finished_fraction"] == 1.0
    assert result["done_after_finish"] == list(range(1001, 1031))
    assert "%d computed" % (30 - len(cancelled_at)) in result["finished_summary"]
    assert result["again"] == ["FINISHED"] and "30 from cache" in result["again_status"]
    drawn = result["panel"]
    operators = [args[0] for name, args, _ in drawn if name == "operator"]
    assert operators == ["vrmbg.add_matte", "vrmbg.analyse", "vrmbg.stop", "vrmbg.clear_cache",
                         "vrmbg.prune_cache", "vrmbg.release_gpu"]
    labels = [kwargs.get("text", "") for name, _, kwargs in drawn if name == "label"]
    assert result["again_status"] in labels  # the status line
    assert [kwargs["factor"] for name, _, kwargs in drawn if name == "progress"] == [1.0]
    from vrmbg.plugin import schema
    common = [p.name for p in schema.common("blender")]  # the schema's, shown first
    assert common == ["model", "resolution", "device", "precision"]
    assert [args[0] for name, args, _ in drawn if name == "prop"] == ["auto"] + common
    groups = result["groups"]  # every other setting, in collapsed groups under the panel
    assert all(g["parent"] == "VRMBG_PT_matte" and g["options"] == ["DEFAULT_CLOSED"]
               for g in groups.values())
    in_groups = [prop for g in groups.values() for prop in g["props"]]
    assert sorted(in_groups + common) == sorted(p.name for p in schema.for_host("blender"))
    dialog = [args[0] for name, args, _ in result["dialog"] if name == "prop"]
    assert dialog == ["match_scene"] + common  # the Add dialog asks only these
    # the cache's size, and a prune that frees the other settings' frames
    assert result["size_one_chain"].startswith("cache "), result["size_one_chain"]
    assert "other settings" not in result["size_one_chain"]  # the shot's own files are none
    assert "other settings" in result["size_two_chains"], result["size_two_chains"]
    assert result["pruned"] == ["FINISHED"]
    assert "pruned 1 chain" in result["prune_status"].lower(), result["prune_status"]
    assert result["size_after_prune"] not in ("", result["size_two_chains"])
    assert result["done_after_prune"] == list(range(1001, 1031))  # the shown chain stays
    assert result["stopped"] == result["released"] == result["cleared"] == ["FINISHED"]
    assert result["left_after_clear"] == []
    assert result["released_status"].startswith("Released "), result["released_status"]
    assert result["cleared_status"] == "Cache cleared", result["cleared_status"]


def test_changing_frame_computes_that_frame_in_the_background(blender, extension_zip,
                                                              plates, tmp_path):
    done, result = run_scenario(blender, "follow_frame.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=frame_path(plates, 1001),
                                blend=str(tmp_path / "shot.blend"), frame=1004)
    result = scenario_ok(done, result)
    assert result["reloaded"] == ["VRMBG sh010"]
    assert result["on_disk"] == [1001, 1002, 1003, 1004]  # computed forward, nothing beyond


def as_stored(param, value):
    """The value as Blender keeps it: float properties are single precision."""
    if param.kind == "float":
        return pytest.approx(value, rel=1e-6)
    return value


def test_settings_are_the_schemas_and_the_addon_unregisters_cleanly(blender, extension_zip,
                                                                     plates, tmp_path):
    from vrmbg.plugin import schema

    bare_python = blender  # a Python without vrmbg: the Blender venv's own
    params = schema.for_host("blender")
    done, result = run_scenario(blender, "registration.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=frame_path(plates, 1002),
                                blend=str(tmp_path / "shot.blend"),
                                names=[p.name for p in schema.PARAMS],
                                engine_python=sys.executable, no_vrmbg_python=bare_python)
    result = scenario_ok(done, result)
    tooltips = result["matte"]  # what happens in Blender, not the command line's defaults
    assert "Blender" in tooltips["ocio"]["description"]
    assert "ocio://" not in tooltips["ocio"]["description"]
    assert "Blender" in tooltips["input_colorspace"]["description"]
    assert ".blend" in tooltips["cache_dir"]["description"]
    assert result["kept_python"] == sys.executable  # disable + enable keeps the preference
    assert result["remote_code"] == [False, True]  # the worker starts with the person's choice
    assert result["found"][sys.executable] == sys.executable
    assert "vrmbg is not installed" in result["found"][bare_python], result["found"]
    for where in ("matte", "operator", "defaults"):
        assert sorted(result[where]) == sorted(p.name for p in params), where
        for param in params:
            prop = result[where][param.name]
            help_text = param.help_for("blender")
            assert (prop["name"], prop["description"]) == (param.label, help_text)
            assert "--" not in prop["description"], param.name  # no command-line flags
            assert prop["default"] == as_stored(param, param.default), (where, param.name)
            if param.kind == "enum":
                assert prop["choices"] == list(param.choices)
            if param.minimum is not None:
                assert prop["min"] == as_stored(param, param.minimum), (where, param.name)
            if param.maximum is not None:
                assert prop["max"] == as_stored(param, param.maximum), (where, param.name)
    assert "preview_resolution" in result["matte"]  # a Blender-only setting is there
    from_node = result["from_node"]
    assert from_node["result"] == ["FINISHED"]
    assert (from_node["resolution"], from_node["precision"]) == (64, "fp32")
    assert os.path.realpath(from_node["plate"]) == os.path.realpath(plates)
    assert from_node["scene_range"] == [FIRST, FIRST + FRAMES - 1]
    assert from_node["size"] == list(SIZE)
    assert result["installed_handlers"] == ["exact_frame", "file_loaded", "follow_frame"]
    assert result["after_disable"] == {"operator": False, "settings": False, "handlers": [],
                                       "worker": False}
    assert result["after_enable"] == {"operator": True,
                                      "handlers": ["exact_frame", "file_loaded", "follow_frame"]}


def test_movie_plate_frames_line_up_with_their_mattes(blender, extension_zip, tmp_path):
    shot = generate_shot(7, frames=5, width=SIZE[0], height=SIZE[1], first_frame=FIRST)
    video = [np.clip(np.clip(rgb, 0, 1) ** (1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)
             for rgb in shot.rgb]
    os.makedirs(tmp_path / "edit é")
    movie = write_video(tmp_path / "edit é" / "sh030.mov", video, codec="prores_ks",
                        pix_fmt="yuv422p10le", frame_format="rgb24", reformat={})
    done, result = run_scenario(blender, "render_matte.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=movie,
                                blend=str(tmp_path / "edit.blend"), out=str(tmp_path / "out"),
                                stills=[999, 1003], animation=[1004, 1005])
    result = scenario_ok(done, result)
    assert (result["first"], result["last"]) == (1001, 1005)  # movies start at 1001
    assert result["name"] == "VRMBG sh030"
    colour = result["colour"]
    straight = render_straight(movie, str(tmp_path / "straight" / "m.####.exr"), "--ocio",
                               colour["ocio"], "--input-colorspace", colour["input_colorspace"])
    assert not np.array_equal(channel(frame_path(straight, 1003), "A"),
                              channel(frame_path(straight, 1004), "A"))  # frames tell apart
    assert_alpha_is_matte(result["stills"]["1003"], frame_path(straight, 1003))
    assert_alpha_is_matte(result["stills"]["999"], frame_path(straight, 1001))  # the nearest
    for frame in (1004, 1005):
        assert_alpha_is_matte(frame_path(result["animation"], frame), frame_path(straight, frame))


def test_a_plate_with_a_cropped_data_window_keeps_its_matte_on_its_pixels(blender,
                                                                         extension_zip,
                                                                         tmp_path):
    """A plate whose pixels cover only part of its frame (a bbox inside the display window):
    wherever Blender places that bbox in the render (Blender 4.5 and 5.2 place it two rows
    apart), the rendered alpha is the matte of the very pixels the rendered colour shows."""
    from vrmbg.core.io.mattes import read_matte

    shot = generate_shot(5, frames=2, width=SIZE[0], height=SIZE[1], first_frame=FIRST)
    folder = tmp_path / "cropped"
    folder.mkdir()
    pattern = os.path.join(str(folder), "sh010.####.exr")
    x, y, width, height = crop = (8, 4, 80, 52)  # the bbox inside the 96x64 frame
    for frame, rgb in zip(shot.frames, shot.rgb):
        inside = np.ascontiguousarray(rgb[y:y + height, x:x + width])
        write_exr(frame_path(pattern, frame), inside, data_window=crop,
                  display_window=(0, 0, SIZE[0], SIZE[1]))
    done, result = run_scenario(
        blender, "render_matte.py", str(tmp_path / "home"), zip=extension_zip,
        plate_frame=frame_path(pattern, FIRST), blend=str(tmp_path / "crop.blend"),
        out=str(tmp_path / "out"), stills=[FIRST + 1], animation=[FIRST, FIRST])
    result = scenario_ok(done, result)
    still = result["stills"][str(FIRST + 1)]
    matte = read_matte(frame_path(result["matte_pattern"], FIRST + 1))  # the display window
    assert 0.0 < float(matte.mean()) < 1.0
    plate_red = np.zeros(matte.shape, np.float32)
    plate_red[y:y + height, x:x + width] = channel(frame_path(pattern, FIRST + 1), "R")
    red, alpha = channel(still, "R"), channel(still, "A")
    assert red.shape == alpha.shape == (height, width)

    def placed(image: np.ndarray, dy: int) -> np.ndarray:
        return image[y + dy:y + dy + height, x:x + width]

    shifts = [dy for dy in range(-y, SIZE[1] - y - height + 1)
              if np.allclose(placed(plate_red, dy), red, atol=1e-5)]
    assert len(shifts) == 1, shifts  # where Blender put the plate's pixels
    np.testing.assert_allclose(alpha, placed(matte, shifts[0]), atol=1e-5)


def test_a_keyframe_changes_its_frame_and_after_and_is_rewritten_when_its_image_changes(
        blender, extension_zip, plates, tmp_path):
    k = FIRST + 2
    alpha = np.zeros((SIZE[1], SIZE[0]), np.float32)
    alpha[8:40, 20:70] = 1.0
    alpha[40:, :] = 0.25  # half-exact values: the matte as given, value for value
    keys = tmp_path / "keys"
    keys.mkdir()
    key_frame = str(keys / ("roto.%d.exr" % k))
    fixed = str(tmp_path / "fixed.exr")
    rgba = lambda a: np.dstack([a, a, a, a])  # noqa: E731
    write_exr(key_frame, rgba(alpha), channels=("R", "G", "B", "A"))
    write_exr(fixed, rgba(alpha[::-1].copy()), channels=("R", "G", "B", "A"))
    done, result = run_scenario(blender, "keyframes.py", str(tmp_path / "home"),
                                zip=extension_zip, plate_frame=frame_path(plates, FIRST),
                                blend=str(tmp_path / "shot.blend"), out=str(tmp_path / "out"),
                                k=k, key_frame=key_frame, changed_key=fixed)
    result = scenario_ok(done, result)
    none, keyed, changed, removed = (
        {int(f): channel(p, "A") for f, p in result[name].items()}
        for name in ("none", "keyed", "changed", "removed"))
    assert result["set"] == result["removed_result"] == ["FINISHED"]
    assert result["key_frames"] == str(k) and result["key_files"] == ["key.%d.exr" % k,
                                                                       "keys.json"]
    assert result["setting"] == os.path.join(result["folder"], "key.####.exr")
    assert "keyframes %d" % k in result["status"], result["status"]
    assert result["panel"] == [["template_ID", "key_image"], ["prop", "key_frames"], ["row"],
                               ["operator", "vrmbg.set_keyframe"],
                               ["operator", "vrmbg.remove_keyframe"]]
    after = range(k + 1, FIRST + FRAMES)
    for frame in range(FIRST, k):  # before the keyframe: untouched, never computed again
        np.testing.assert_array_equal(keyed[frame], none[frame])
        np.testing.assert_array_equal(changed[frame], none[frame])
        assert result["rewritten"][str(frame)] == result["written"][str(frame)]
    np.testing.assert_array_equal(keyed[k], alpha)  # the artist's matte as given
    assert any(not np.array_equal(keyed[f], none[f]) for f in after)  # continued from it
    np.testing.assert_array_equal(changed[k], alpha[::-1])  # the fixed key was written again
    assert any(not np.array_equal(changed[f], keyed[f]) for f in after)
    stopped = result["stopped"]
    assert stopped[str(k - 1)] is None  # a frame before the keyframe does not need it
    assert "keyframe %d" % k in stopped[str(k + 1)] and "older than the key image" in \
        stopped[str(k + 1)], stopped
    for frame in range(FIRST, FIRST + FRAMES):  # removed: the model's mattes again
        np.testing.assert_array_equal(removed[frame], none[frame])
    assert result["left"] == ["keys.json"]
    reopened = result["reopened"]  # a matte without keyframe properties opens and renders
    assert (reopened["key_frames"], reopened["key_image"], reopened["keyframes"]) == ("", True, "")
    np.testing.assert_array_equal(channel(reopened["matte"], "A"), none[k])
