"""Host installers: a NUKE_PATH folder and a Blender extension zip, each with its own copy of
the plugin layer and a record of the engine's Python.

    build_nuke_folder("~/.nuke/vrmbg")        # init.py, menu.py, vrmbg_nuke/ (+ plugin/)
    build_blender_zip("vrmbg-blender.zip")    # blender_manifest.toml, add-on, plugin/

The host glue ships inside the engine install (`vrmbg/nuke/`, `vrmbg/blender_addon/` beside
`vrmbg/core/`, the repository's `nuke/` and `blender_addon/` folders), so an installed vrmbg
can build both. Re-running an installer replaces what it installed before, in place.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from datetime import datetime, timezone

from . import __version__
from .errors import OutputError, UsageError
from .fs import (append_text, atomic_write, atomic_write_text, copy_file, make_folder,
                 remove_path, replace, scratch_folder)

SKIP_NAMES = {"README.md", "__pycache__", ".DS_Store"}
SKIP_SUFFIXES = (".pyc", ".pyo")
NUKE_MANIFEST = ".vrmbg-install.json"  # what the Nuke installer wrote into a folder
NUKE_PACKAGE = "vrmbg_nuke"
DEFAULT_NUKE_HOME = os.path.join("~", ".nuke")
DEFAULT_NUKE_DIR = os.path.join(DEFAULT_NUKE_HOME, "vrmbg")


def check_platform() -> None:
    """UsageError saying so, before anything is written, where vrmbg does not run (Windows):
    a host installed there could not start the engine."""
    from ..plugin.platform_check import unsupported_platform

    problem = unsupported_platform()
    if problem:
        raise UsageError(problem)


def _package_root() -> str:
    """The folder holding core/, plugin/, nuke/ and blender_addon/ (repository or install)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def glue_source(host_folder: str) -> str:
    """Where the shipped glue of a host lives ('nuke' or 'blender_addon')."""
    return os.path.join(_package_root(), host_folder)


def plugin_source() -> str:
    """The plugin layer's folder (copied into every host package)."""
    from .. import plugin

    return os.path.dirname(os.path.abspath(plugin.__file__))


def _skip(name: str) -> bool:
    return name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES) or ".tmp" in name


def _files(source: str) -> list[str]:
    """Relative paths of the glue files to install (no README, caches or temp files)."""
    found = []
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not _skip(d) and not d.startswith("."))
        for name in sorted(names):
            if not _skip(name):
                found.append(os.path.relpath(os.path.join(folder, name), source))
    return found


def write_plugin_copy(folder: str, python: str) -> str:
    """Copy the plugin layer into `folder` and record the engine's Python there."""
    from ..plugin.engine_record import write_record

    make_folder(folder)
    for name in _files(plugin_source()):
        if os.sep not in name and name.endswith(".py"):
            copy_file(os.path.join(plugin_source(), name), os.path.join(folder, name))
    write_record(folder, python, __version__)
    return folder


# --------------------------------------------------------------------------- Nuke

def _check_nuke_folder(folder: str) -> None:
    """Refuse to write over a folder whose init.py or menu.py vrmbg did not install."""
    home = os.path.realpath(os.path.expanduser(DEFAULT_NUKE_HOME))
    if os.path.realpath(folder) == home:
        raise UsageError(f"{folder} is Nuke's own folder: install into a folder of its own "
                         f"(e.g. {DEFAULT_NUKE_DIR}) and add it with --add-to-init")
    if os.path.isfile(os.path.join(folder, NUKE_MANIFEST)):
        return
    foreign = [n for n in ("init.py", "menu.py", NUKE_PACKAGE)
               if os.path.exists(os.path.join(folder, n))]
    if foreign:
        raise UsageError(f"{folder} already has {', '.join(foreign)} that vrmbg did not "
                         "install: choose another --dir")


def build_nuke_folder(folder: str, python: str = sys.executable, *, source: str = "") -> str:
    """Write (or upgrade in place) a NUKE_PATH plugin folder; returns its absolute path.

    It holds the Nuke glue (init.py, menu.py, vrmbg_nuke/) and `vrmbg_nuke/plugin/`, the
    plugin layer with `engine.json` naming `python` as the engine's Python. UsageError (one
    line) on Windows, where vrmbg does not run.
    """
    check_platform()
    folder = os.path.abspath(os.path.expanduser(folder))
    source = source or glue_source("nuke")
    _check_nuke_folder(folder)
    make_folder(folder)
    with scratch_folder(".vrmbg-install-", folder) as stage:
        try:
            for rel in _files(source) if os.path.isdir(source) else []:
                copy_file(os.path.join(source, rel), os.path.join(stage, rel))
            package = os.path.join(stage, NUKE_PACKAGE)
            if not os.path.isfile(os.path.join(package, "__init__.py")):
                atomic_write_text(os.path.join(package, "__init__.py"),
                                  '"""vrmbg for Nuke (installed by `vrmbg install nuke`)."""\n')
            write_plugin_copy(os.path.join(package, "plugin"), python)
            entries = sorted(os.listdir(stage))
            _swap_in(stage, folder, entries)
            _write_manifest(folder, entries, python)
        except OSError as exc:
            raise OutputError(f"cannot write the Nuke plugin folder: {exc}",
                              path=folder) from None
    return folder


def _swap_in(stage: str, folder: str, entries: list[str]) -> None:
    """Replace what an earlier install wrote with the staged entries."""
    old = _read_manifest(folder).get("entries", [])
    for name in set(old) | set(entries):
        if os.sep in name or name.startswith("."):
            continue
        remove_path(os.path.join(folder, name))
    for name in entries:
        replace(os.path.join(stage, name), os.path.join(folder, name))


def _read_manifest(folder: str) -> dict:
    try:
        with open(os.path.join(folder, NUKE_MANIFEST), encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: str, entries: list[str], python: str) -> None:
    data = {"entries": entries, "engine_version": __version__, "python": python,
            "installed": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(os.path.join(folder, NUKE_MANIFEST), json.dumps(data, indent=2))


def nuke_init_line(folder: str) -> str:
    """The line that adds the plugin folder to Nuke (for ~/.nuke/init.py)."""
    return f"nuke.pluginAddPath({os.path.abspath(folder)!r})"


def add_to_nuke_init(folder: str, nuke_home: str = DEFAULT_NUKE_HOME) -> tuple[str, bool]:
    """Add the plugin folder to Nuke's init.py unless it is there; returns (init.py, changed)."""
    home = os.path.abspath(os.path.expanduser(nuke_home))
    init = os.path.join(home, "init.py")
    line = nuke_init_line(folder)
    try:
        with open(init, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise OutputError(f"cannot read Nuke's init.py: {exc}", path=init) from None
    if line in text:
        return init, False
    addition = "" if not text or text.endswith("\n") else "\n"
    if "import nuke" not in text:
        addition += "import nuke\n"
    addition += f"{line}  # vrmbg\n"
    try:
        append_text(init, addition)
    except OSError as exc:
        raise OutputError(f"cannot add vrmbg to Nuke's init.py: {exc}", path=init) from None
    return init, True


# --------------------------------------------------------------------------- Blender

def default_blender_zip() -> str:
    """The zip name when none is given (in the current folder)."""
    return os.path.abspath(f"vrmbg-blender-{__version__}.zip")


def build_blender_zip(path: str, python: str = sys.executable, *, source: str = "") -> str:
    """Write (or replace) a Blender extension zip; returns its absolute path.

    The zip holds blender_manifest.toml and the add-on modules at its root, and `plugin/`,
    the plugin layer with `engine.json` naming `python` as the engine's Python. UsageError (one
    line) on Windows, where vrmbg does not run.
    """
    check_platform()
    path = os.path.abspath(os.path.expanduser(path))
    source = source or glue_source("blender_addon")
    if not os.path.isfile(os.path.join(source, "blender_manifest.toml")):
        raise UsageError("this vrmbg has no Blender add-on to install (no "
                         "blender_manifest.toml)", path=source)
    with scratch_folder("vrmbg-plugin-") as staging:
        try:
            plugin = write_plugin_copy(os.path.join(staging, "plugin"), python)
            atomic_write(path, lambda tmp: _write_zip(tmp, source, plugin))
        except OSError as exc:
            raise OutputError(f"cannot write the Blender extension: {exc}",
                              path=path) from None
    return path


def _write_zip(path: str, source: str, plugin: str) -> None:
    """The extension zip: the add-on from `source`, and the fresh plugin copy as `plugin/`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in _files(source):
            if rel.split(os.sep)[0] == "plugin":
                continue  # the fresh copy below is the one that ships
            archive.write(os.path.join(source, rel), rel.replace(os.sep, "/"))
        for rel in _files(plugin):
            archive.write(os.path.join(plugin, rel), "plugin/" + rel.replace(os.sep, "/"))
