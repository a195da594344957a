"""The Nuke node and the fake `nuke` run under Python 3.9, Nuke 14's Python.

The node's unit tests (`test_nuke_node.py`, plain unittest) run in a Python 3.9 subprocess on
the folder `vrmbg install nuke` writes, and every file of that folder must compile there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unittest

import pytest

from nuke_harness import FOLDER_VARIABLE, build_folder

HERE = os.path.dirname(os.path.abspath(__file__))


def python39() -> str:
    """pyenv's Python 3.9 (the version Nuke 14 embeds), or skip saying it is missing."""
    root = os.environ.get("PYENV_ROOT", "")
    if not root and shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    root = root or os.path.expanduser("~/.pyenv")
    path = os.path.join(root, "versions", "3.9.18", "bin", "python3.9")
    if not os.path.isfile(path):
        pytest.skip(f"Python 3.9.18 is not installed at {path} (pyenv install 3.9.18)")
    return path


def _env(folder: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env[FOLDER_VARIABLE] = folder
    env["PYTHONPATH"] = os.path.join(HERE, os.pardir, os.pardir, "support")  # nuke_harness & co.
    return env


def test_the_installed_folder_compiles_under_python_39(tmp_path):
    folder = build_folder(str(tmp_path))
    done = subprocess.run([python39(), "-m", "compileall", "-q", folder],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_node_unit_tests_pass_under_python_39(tmp_path):
    folder = build_folder(str(tmp_path))
    done = subprocess.run([python39(), "-m", "unittest", "-v", "test_nuke_node"], cwd=HERE,
                          env=_env(folder), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.search(r"^Ran (\d+) tests?", done.stderr, re.M)
    expected = unittest.defaultTestLoader.loadTestsFromName("test_nuke_node").countTestCases()
    assert ran and int(ran.group(1)) == expected, done.stderr
