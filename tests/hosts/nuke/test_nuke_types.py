"""The Nuke node type-checks against Nuke's published API (PyPI types-nuke) with mypy.

Checked on the installed folder, so the node's imports of its plugin copy (`vrmbg_nuke.plugin`)
resolve; errors are reported for the node's own modules (the plugin layer is the engine's and is
tested on its own). mypy cannot target Python 3.9 any more; `test_nuke_py39.py` covers 3.9.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

from nuke_harness import build_folder


def test_the_node_type_checks_against_the_nuke_stubs(tmp_path):
    folder = build_folder(str(tmp_path))
    command = [sys.executable, "-m", "mypy", "--python-version", "3.10",
               "--cache-dir", str(tmp_path / "mypy-cache"), "--follow-imports=silent",
               "--no-error-summary"]
    command += sorted(os.path.relpath(p, folder)
                      for p in glob.glob(os.path.join(folder, "vrmbg_nuke", "*.py")))
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
