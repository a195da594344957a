"""The host client against a real worker, under the project's Python and under Python 3.9.

The checks themselves live in client_checks.py (standard library only, like the plugin);
here they run in-process, once more in a Python 3.9 subprocess (the oldest host Python),
and their mattes are compared bit for bit with `vrmbg render`'s straight run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import client_checks
from render_helpers import assert_same_mattes, clean_env, make_plates, render_args, run_process

PY39 = os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")),
                    "versions", "3.9.18", "bin", "python3.9")
FRAMES = list(range(client_checks.FIRST, client_checks.FIRST + client_checks.COUNT))


@pytest.fixture(scope="module")
def context(tmp_path_factory, model) -> dict:
    plates = make_plates(str(tmp_path_factory.mktemp("plates")), FRAMES)
    return {"python": sys.executable, "plates": plates, "model": model,
            "tmp": str(tmp_path_factory.mktemp("client"))}


def _straight(context: dict, resolution: int) -> str:
    out = os.path.join(context["tmp"], f"straight-{resolution}")
    pattern = os.path.join(out, "sh010.####.exr")
    if not os.path.isdir(out):
        done = run_process(render_args(context["plates"], pattern, context["model"],
                                       "--resolution", str(resolution),
                                       cache=os.path.join(out, "cache")))
        assert done.returncode == 0, done.stderr
    return pattern


@pytest.mark.parametrize("name", sorted(client_checks.CHECKS))
def test_client(context, name, monkeypatch):
    monkeypatch.delenv("VRMBG_PYTHON", raising=False)
    result = client_checks.CHECKS[name](context)
    if name == "check_open_ensure_and_events":
        assert_same_mattes(_straight(context, 64), result["pattern"], FRAMES)
    if name == "check_kill_9_mid_range_restarts_and_finishes":
        assert result["frame_events"] >= len(FRAMES)
        assert_same_mattes(_straight(context, 256), result["pattern"], FRAMES)


def test_plugin_and_client_checks_run_under_python_3_9(context, tmp_path):
    if not os.path.isfile(PY39):
        pytest.skip(f"Python 3.9 is not installed at {PY39} (pyenv install 3.9.18)")
    ctx = dict(context, tmp=str(tmp_path))
    ctx_file = tmp_path / "context.json"
    ctx_file.write_text(json.dumps(ctx))
    env = clean_env()
    env.pop("VRMBG_PYTHON", None)
    env.pop("PYTHONPATH", None)
    done = subprocess.run([PY39, os.path.join(os.path.dirname(__file__), os.pardir, "support", "client_checks.py"),
                           str(ctx_file)], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["python"].startswith("3.9")
    failed = {name: r["error"] for name, r in report["results"].items() if not r["ok"]}
    assert not failed, "\n".join(f"{n}:\n{e}" for n, e in failed.items())
    assert set(report["results"]) == set(client_checks.CHECKS)
    crash = report["results"]["check_kill_9_mid_range_restarts_and_finishes"]["result"]
    assert_same_mattes(_straight(context, 256), crash["pattern"], FRAMES)
