"""The Nuke node type-checks against Nuke's published API (PyPI types-nuke) with mypy.

Checked on the installed folder, so the plugin copy (`vrmbg_nuke.plugin`) is checked with it.
mypy cannot target Python 3.9 any more; 3.9 itself is covered by `test_nuke_py39.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

from nuke_harness import build_folder


def test_the_node_type_checks_against_the_nuke_stubs(tmp_path):
    folder = build_folder(str(tmp_path))
    command = [sys.executable, "-m", "mypy", "--python-version", "3.10",
               "--cache-dir", str(tmp_path / "mypy-cache"), "--follow-imports=silent",
               "--no-error-summary", "-p", "vrmbg_nuke"]
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
