"""The Blender add-on in real Blender (PyPI `bpy` 5.2 and 4.5), installed from the extension zip
that `vrmbg install blender --zip` builds, talking to the real worker with the demo model.

Each Blender scenario runs as its own process (tests/blender_scenarios/, a crash there cannot
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
from plate_factory import frame_path, write_exr
from vrmbg.core.demo.synth import generate_shot
from vrmbg.core.install import build_blender_zip

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "blender_scenarios")
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


@pytest.fixture(scope="session")
def straight(plates, tmp_path_factory) -> str:
    """The same plates through a straight `vrmbg render` with the demo model."""
    output = str(tmp_path_factory.mktemp("straight") / "matte.####.exr")
    subprocess.run([sys.executable, "-m", "vrmbg.core", "render", plates, "-o", output,
                    "--model", "demo"], check=True, env=engine_env(), capture_output=True)
    return output


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
        out=str(root / "out"), stills=[1001, 1004], animation=[1002, 1003])
    result = scenario_ok(done, result)
    result["root"] = str(root)
    return result


def test_added_matte_covers_the_plate_and_caches_beside_the_blend(rendered, plates):
    assert (rendered["first"], rendered["last"]) == (FIRST, FIRST + FRAMES - 1)
    assert os.path.realpath(rendered["plate"]) == os.path.realpath(plates)
    assert rendered["model"] == "demo"
    cache = os.path.join(rendered["root"], "vrmbg-cache")
    assert os.path.realpath(rendered["matte_pattern"]).startswith(os.path.realpath(cache))


def test_rendered_stills_have_the_engines_matte_as_alpha(rendered, straight):
    for frame, path in rendered["stills"].items():
        assert_alpha_is_matte(path, frame_path(rendered["matte_pattern"], int(frame)))
        assert_alpha_is_matte(path, frame_path(straight, int(frame)))


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
