"""`vrmbg install nuke|blender`: what lands where, upgrades in place, and the installed plugin
finds the engine's Python from its own engine.json."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import types
import zipfile

import pytest

from render_helpers import clean_env, run_cli
from vrmbg.core.errors import UsageError
from vrmbg.core.install import (add_to_nuke_init, build_blender_zip, build_nuke_folder,
                                nuke_init_line)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGIN_FILES = sorted(p.name for p in (ROOT / "plugin").glob("*.py"))


def _nuke_glue(folder: pathlib.Path) -> str:
    """A stand-in for the repository's nuke/ folder (whatever files it holds get copied)."""
    (folder / "vrmbg_nuke").mkdir(parents=True)
    (folder / "init.py").write_text("# init\n")
    (folder / "menu.py").write_text("# menu\n")
    (folder / "README.md").write_text("not installed\n")
    (folder / "vrmbg_nuke" / "__init__.py").write_text("")
    (folder / "vrmbg_nuke" / "node.py").write_text("from .plugin import client\n")
    return str(folder)


def _blender_glue(folder: pathlib.Path) -> str:
    """A stand-in for the repository's blender_addon/ folder."""
    folder.mkdir(parents=True)
    (folder / "blender_manifest.toml").write_text('schema_version = "1.0.0"\nid = "vrmbg"\n')
    (folder / "__init__.py").write_text("from .plugin import client, schema\n")
    (folder / "panel.py").write_text("# panel\n")
    (folder / "README.md").write_text("not installed\n")
    return str(folder)


def _run(python_code: str, path: str) -> str:
    done = subprocess.run([sys.executable, "-c", python_code], capture_output=True, text=True,
                          cwd=path, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nuke_folder_holds_the_glue_and_a_plugin_copy_that_finds_the_engine(tmp_path):
    source = _nuke_glue(tmp_path / "glue")
    folder = build_nuke_folder(str(tmp_path / "nuke plugins ü"), python="/opt/engine/bin/py",
                               source=source)
    assert sorted(os.listdir(folder)) == [".vrmbg-install.json", "init.py", "menu.py",
                                          "vrmbg_nuke"]
    package = pathlib.Path(folder) / "vrmbg_nuke"
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "node.py", "plugin"]
    plugin = package / "plugin"
    assert sorted(p.name for p in plugin.glob("*.py")) == PLUGIN_FILES
    record = json.loads((plugin / "engine.json").read_text())
    assert record["python"] == "/opt/engine/bin/py" and record["engine_version"]
    found = _run("import vrmbg_nuke.plugin.client as c, vrmbg_nuke.node; "
                 "print(c.engine_record.read_record()['python'])", folder)
    assert found == "/opt/engine/bin/py"


def test_nuke_install_upgrades_in_place_and_refuses_foreign_folders(tmp_path):
    source = _nuke_glue(tmp_path / "glue")
    folder = build_nuke_folder(str(tmp_path / "vrmbg"), python=sys.executable, source=source)
    stale = pathlib.Path(folder) / "vrmbg_nuke" / "old_module.py"
    stale.write_text("# from an older version\n")
    (pathlib.Path(source) / "menu.py").write_text("# menu v2\n")
    build_nuke_folder(folder, python=sys.executable, source=source)
    assert not stale.exists()
    assert (pathlib.Path(folder) / "menu.py").read_text() == "# menu v2\n"
    assert not [n for n in os.listdir(folder) if n.startswith(".vrmbg-install-")]
    foreign = tmp_path / "someone_else"
    foreign.mkdir()
    (foreign / "init.py").write_text("# the user's own\n")
    with pytest.raises(UsageError, match="did not install"):
        build_nuke_folder(str(foreign), source=source)
    assert (foreign / "init.py").read_text() == "# the user's own\n"


def test_add_to_init_adds_the_plugin_path_once(tmp_path):
    home = tmp_path / ".nuke"
    home.mkdir()
    (home / "init.py").write_text("import nuke\nnuke.pluginAddPath('/other')")
    folder = str(tmp_path / "it's here")
    assert add_to_nuke_init(folder, str(home)) == (str(home / "init.py"), True)
    assert add_to_nuke_init(folder, str(home))[1] is False
    text = (home / "init.py").read_text()
    assert text.count(nuke_init_line(folder)) == 1 and "/other" in text
    paths: list[str] = []
    exec(text.replace("import nuke\n", ""), {"nuke": types.SimpleNamespace(pluginAddPath=paths.append)})
    assert paths == ["/other", os.path.abspath(folder)]


def test_cli_install_nuke_prints_the_init_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run_cli(["install", "nuke", "--dir", str(tmp_path / "vrmbg")], capsys)
    assert code == 0, err
    assert nuke_init_line(str(tmp_path / "vrmbg")) in out
    assert not (tmp_path / ".nuke" / "init.py").exists()
    code, out, _ = run_cli(["install", "nuke", "--dir", str(tmp_path / "vrmbg"),
                            "--add-to-init"], capsys)
    assert code == 0 and (tmp_path / ".nuke" / "init.py").is_file()
    assert (tmp_path / "vrmbg" / "vrmbg_nuke" / "plugin" / "engine.json").is_file()


def test_blender_zip_has_manifest_addon_and_plugin_copy_at_its_root(tmp_path):
    source = _blender_glue(tmp_path / "addon")
    path = build_blender_zip(str(tmp_path / "out" / "vrmbg.zip"), python="/engine/py",
                             source=source)
    names = sorted(zipfile.ZipFile(path).namelist())
    assert names == sorted(["blender_manifest.toml", "__init__.py", "panel.py",
                            "plugin/engine.json"] + [f"plugin/{n}" for n in PLUGIN_FILES])
    unpacked = tmp_path / "extensions" / "vrmbg_addon"
    zipfile.ZipFile(path).extractall(unpacked)
    found = _run("import vrmbg_addon.plugin.client as c; "
                 "print(c.engine_record.read_record()['python'])",
                 str(unpacked.parent))
    assert found == "/engine/py"
    (pathlib.Path(source) / "panel.py").write_text("# panel v2\n")
    again = build_blender_zip(path, python="/engine/py2", source=source)
    assert zipfile.ZipFile(again).read("panel.py") == b"# panel v2\n"
    assert json.loads(zipfile.ZipFile(again).read("plugin/engine.json"))["python"] == \
        "/engine/py2"
    assert os.listdir(tmp_path / "out") == ["vrmbg.zip"]


def test_blender_install_without_an_addon_says_so(tmp_path):
    with pytest.raises(UsageError, match="blender_manifest.toml"):
        build_blender_zip(str(tmp_path / "x.zip"), source=str(tmp_path))
    assert not (tmp_path / "x.zip").exists()


def test_install_help_says_where_things_go(capsys):
    with pytest.raises(SystemExit):
        run_cli(["install", "nuke", "--help"], capsys)
    text = capsys.readouterr().out
    assert "init.py" in text and "vrmbg_nuke/plugin/" in text and "--add-to-init" in text
    with pytest.raises(SystemExit):
        run_cli(["install", "blender", "--help"], capsys)
    text = capsys.readouterr().out
    assert "Install from Disk" in text and "engine.json" in text
