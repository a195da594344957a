"""Real Blender (the PyPI `bpy` module) for the add-on tests: one cached venv per Blender version.

`bpy` is Blender built as a Python module, and each Blender line needs its own Python: 5.2 runs
on Python 3.13, the 4.5 LTS on Python 3.11. `blender_python(version)` finds that interpreter,
makes a venv holding only bpy (and what bpy itself pulls in, numpy among them) under
`~/.cache/vrmbg-tests/` (or `$VRMBG_TEST_CACHE`), and returns the venv's python. A venv is
marked complete only after bpy imports, so an interrupted install is redone on the next run.

Run it directly to build the venvs ahead of the tests and see their install time and size:
`python tests/support/blender_env.py` prints one JSON object.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

# Blender version (as pip knows bpy) -> the Python it is built for.
BLENDERS = {"5.2.3": "3.13", "4.5.15": "3.11"}
_MARK = "vrmbg-ready.json"


@dataclass
class BlenderPython:
    """A venv's python that imports bpy at `version`, or why there is none (`skip_reason`)."""

    version: str
    python: str = ""
    skip_reason: str = ""


def cache_root() -> str:
    """Where the test venvs live between runs."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "vrmbg-tests")
    return os.environ.get("VRMBG_TEST_CACHE") or default


def find_interpreter(python_version: str) -> str:
    """An interpreter of `python_version` ('3.13'): pyenv's, else one on PATH; '' when none."""
    candidates = []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        root = os.path.join(os.path.expanduser("~"), ".pyenv")
    pattern = os.path.join(root, "versions", python_version + ".*", "bin",
                           "python" + python_version)
    candidates += sorted(glob.glob(pattern), reverse=True)
    on_path = shutil.which("python" + python_version)
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if _reports_version(candidate, python_version):
            return candidate
    return ""


def _reports_version(python: str, python_version: str) -> bool:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == python_version


def venv_dir(version: str) -> str:
    """The venv folder for one Blender version."""
    return os.path.join(cache_root(), "bpy-%s-py%s" % (version, BLENDERS[version]))


def blender_python(version: str) -> BlenderPython:
    """The python of a venv with bpy `version`, made (once, under a lock) when missing."""
    python_version = BLENDERS[version]
    base = find_interpreter(python_version)
    if not base:
        return BlenderPython(version, skip_reason="Python %s (needed by bpy %s) is not installed"
                             % (python_version, version))
    folder = venv_dir(version)
    os.makedirs(cache_root(), exist_ok=True)
    with open(folder + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = os.path.join(folder, "bin", "python")
        if not os.path.exists(os.path.join(folder, _MARK)):
            _install(base, folder, version)
    return BlenderPython(version, python=python)


def _install(base: str, folder: str, version: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    subprocess.run([base, "-m", "venv", folder], check=True)
    python = os.path.join(folder, "bin", "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "bpy==" + version], check=True)
    subprocess.run([python, "-c", "import bpy"], check=True, capture_output=True)
    record = {"bpy": version, "python": BLENDERS[version],
              "install_seconds": round(time.monotonic() - started, 1),
              "bytes": _folder_bytes(folder)}
    with open(os.path.join(folder, _MARK), "w") as out:
        json.dump(record, out)


def _folder_bytes(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def install_record(version: str) -> dict:
    """What the venv's install took (seconds, bytes), as recorded when it was made."""
    with open(os.path.join(venv_dir(version), _MARK)) as source:
        return json.load(source)


def main() -> int:
    """Build every Blender venv and print their install time and size as JSON."""
    report = {}
    for version in BLENDERS:
        found = blender_python(version)
        report[version] = install_record(version) if found.python else {"skipped": found.skip_reason}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
