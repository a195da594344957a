"""The distribution installs one uniquely named package and the plugin layer stays portable."""

import ast
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True)
    (path,) = out.glob("vrmbg-*.whl")
    return path


def test_wheel_installs_only_the_vrmbg_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("vrmbg-")}
    assert top == {"vrmbg"}, top
    assert "vrmbg/core/cli/__init__.py" in names
    assert "vrmbg/plugin/schema.py" in names
    entry = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry[0]).decode()
    assert "vrmbg = vrmbg.core.cli:main" in text


def test_the_demo_model_ships_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("config.json", "model.safetensors", "MODEL_CARD.md"):
        assert f"vrmbg/core/demo/weights/demo/{name}" in names, name


def test_every_core_subpackage_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (ROOT / "core").rglob("__init__.py"):
        rel = init.relative_to(ROOT / "core").as_posix()
        assert f"vrmbg/core/{rel}" in names, f"core/{rel} missing: list it in pyproject.toml"


def test_host_glue_ships_in_the_wheel_and_the_installers_run_from_it(wheel, tmp_path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for host in ("nuke", "blender_addon"):
        for path in (ROOT / host).rglob("*"):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in rel:
                assert f"vrmbg/{rel}" in names, f"{rel} missing from the wheel"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -S: no site-packages, so only the unpacked wheel (not this checkout) provides vrmbg
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from vrmbg.core.install import "
            "build_nuke_folder; print(build_nuke_folder(sys.argv[2], python='/engine/py'))")
    done = subprocess.run([sys.executable, "-S", "-c", code, str(site), str(tmp_path / "nk")],
                          capture_output=True, text=True, check=True)
    plugin = pathlib.Path(done.stdout.strip()) / "vrmbg_nuke" / "plugin"
    assert (plugin / "client.py").is_file() and (plugin / "engine.json").is_file()


def test_plugin_layer_is_stdlib_only_with_relative_imports():
    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / "plugin").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in stdlib, f"{path.name}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in stdlib, f"{path.name}: from {node.module}"


def test_core_never_imports_a_host():
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            for mod in mods:
                assert mod.split(".")[0] not in {"nuke", "bpy", "hou"}, f"{path}: {mod}"


def test_command_line_entry_points():
    out = subprocess.run([sys.executable, "-m", "vrmbg.core", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("vrmbg ")
    out = subprocess.run([sys.executable, "-m", "vrmbg.core", "--help"],
                         capture_output=True, text=True, check=True)
    listed = {line.split()[0] for line in out.stdout.splitlines()
              if line.startswith("    ") and line.split()}
    for command in ("demo", "render", "render-shots", "info", "cache", "model", "job"):
        assert command in listed, f"'vrmbg {command}' is missing from --help"


def test_a_command_module_that_cannot_import_is_an_error(monkeypatch):
    from vrmbg.core import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("no_such_command",))
    with pytest.raises(ModuleNotFoundError, match="no_such_command"):
        cli.build_parser()
