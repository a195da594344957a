"""plugin/host_colour.py: Nuke's and Blender's colour settings -> the engine's settings.

The cases live in host_colour_cases.py (plain asserts) so the same cases also run under the
Python 3.9 of Nuke 14, on a copy of plugin/ as the installers make it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import PyOpenColorIO as OCIO
import pytest

import host_colour_cases
from host_configs import (BLENDER_STANDARD_SPACES, write_blender_like_config,
                          write_nuke_like_config)
from vrmbg.core.colour.transform import ColourTransform
from vrmbg.plugin import host_colour

PLUGIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "plugin")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return host_colour_cases.Folders(str(tmp_path_factory.mktemp("hosts")))


@pytest.mark.parametrize("case", host_colour_cases.CASES, ids=lambda c: c.__name__[5:])
def test_host_colour_case(case, folders):
    case(host_colour, folders)


def python39() -> str:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("pyenv") else os.path.expanduser("~/.pyenv")
    return os.path.join(root, "versions", "3.9.18", "bin", "python3.9")


def test_cases_pass_under_python_3_9_on_a_copy_of_plugin(tmp_path):
    interpreter = python39()
    if not os.path.isfile(interpreter):
        pytest.skip(f"Python 3.9 (Nuke 14's) is not installed at {interpreter}")
    shutil.copytree(PLUGIN_DIR, tmp_path / "vrmbg_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cases = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "support", "host_colour_cases.py")
    result = subprocess.run([interpreter, "-I", cases, str(tmp_path), "vrmbg_plugin"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{len(host_colour_cases.CASES)} host colour cases passed on Python 3.9" in result.stdout


# ---------------------------------------------------------------- with the engine

def ocio_names(config: "OCIO.Config") -> dict[str, list[str]]:
    spaces = list(config.getColorSpaceNames(OCIO.SEARCH_REFERENCE_SPACE_ALL, OCIO.COLORSPACE_ALL))
    return {"spaces": spaces,
            "aliases": [a for s in spaces for a in config.getColorSpace(s).getAliases()],
            "roles": [role for role, _ in config.getRoles()]}


@pytest.mark.parametrize("uri", ["ocio://studio-config-latest", "ocio://cg-config-latest"])
def test_config_names_agree_with_pyocio_on_serialised_configs(uri, tmp_path):
    config = OCIO.Config.CreateFromFile(uri)
    path = tmp_path / "config.ocio"
    path.write_text(config.serialize(), encoding="utf-8")
    names = host_colour.config_names(str(path))
    expected = ocio_names(config)
    assert {k: sorted(v) for k, v in names.items()} == {k: sorted(v) for k, v in expected.items()}


def test_nuke_default_script_reaches_the_model_space(tmp_path):
    nuke_dir = tmp_path / "Nuke15.1v3"
    folder = nuke_dir / "plugins" / "OCIOConfigs" / "configs" / "nuke-default"
    config = write_nuke_like_config(str(folder))
    settings = host_colour.nuke_colour_settings({"colorManagement": "Nuke"}, "default (linear)",
                                                nuke_dir=str(nuke_dir), environ={})
    assert settings == {"ocio": config, "input_colorspace": "linear"}
    colour = ColourTransform(ocio=settings["ocio"], input_space=settings["input_colorspace"])
    assert colour.route == "standard"


def test_blender_image_reaches_the_model_space(tmp_path):
    folder = tmp_path / "5.1" / "datafiles" / "colormanagement"
    folder.mkdir(parents=True)
    config = write_blender_like_config(str(folder))
    for blender_space, _ in BLENDER_STANDARD_SPACES:
        settings = host_colour.blender_colour_settings(blender_space,
                                                       resource_local=str(tmp_path / "5.1"),
                                                       environ={})
        assert settings == {"ocio": config, "input_colorspace": blender_space}
        colour = ColourTransform(ocio=settings["ocio"], input_space=settings["input_colorspace"])
        assert colour.route == "interchange"
