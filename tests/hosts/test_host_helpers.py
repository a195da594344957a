"""What every host needs and no host API gives: a plate's name, the engine Python chosen in a
host's preferences and whether it can run the engine, work posted to the main thread, and the
settings a host shows first with the help it shows (plugin/). The hosts' own tests check only
that they use these."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from vrmbg.plugin import engine_record, schema
from vrmbg.plugin.main_thread import MainThreadQueue
from vrmbg.plugin.paths import shot_name
from vrmbg.plugin.worker_process import engine_python_problem, engine_python_text


@pytest.mark.parametrize("path, name", [
    ("/e/sh030.mov", "sh030"), ("/p/sh010.1001.exr", "sh010"), ("/p/sh010.####.exr", "sh010"),
    ("/p/sh_020.####.exr", "sh_020"), ("/p/sh010_%04d.exr", "sh010"),
    ("/p/plate_1001.exr", "plate"), ("/p/bg.$F4.exr", "bg"), ("/p/fg.@@@@.dpx", "fg"),
])
def test_a_plate_is_named_by_its_shot_never_by_its_frame_numbers(path, name):
    assert shot_name(path) == name


def test_the_chosen_engine_python_outlives_the_hosts_preferences(tmp_path):
    engine_record.write_record(str(tmp_path), "/envs/vrmbg/bin/python", "1.0")
    assert engine_record.chosen_python(str(tmp_path)) == ""
    engine_record.choose_python("/opt/other/python", str(tmp_path))
    record = engine_record.read_record(str(tmp_path))
    assert record["chosen_python"] == "/opt/other/python"
    assert record["python"] == "/envs/vrmbg/bin/python"  # the installer's stays as it was
    assert engine_record.chosen_python(str(tmp_path)) == "/opt/other/python"


def test_an_engine_python_counts_only_when_vrmbg_imports_there(tmp_path):
    assert engine_python_problem(sys.executable) == ""
    assert engine_python_text(sys.executable) == sys.executable
    bare = tmp_path / "python3"  # a Python that runs but has no vrmbg (as /usr/bin/python3)
    bare.write_text("#!/bin/sh\nexit 1\n")
    os.chmod(bare, 0o755)
    assert "vrmbg is not installed for" in engine_python_problem(str(bare))
    assert "does not exist" in engine_python_text(str(tmp_path / "missing"))


def test_work_posted_from_any_thread_runs_on_the_draining_thread_in_order(capsys):
    queue, ran = MainThreadQueue(), []
    poster = threading.Thread(target=lambda: [queue.post(lambda n=n: ran.append(
        (n, threading.current_thread()))) for n in range(3)])
    poster.start()
    poster.join()
    queue.post(lambda: 1 / 0)  # a failing action is said, and the rest still runs
    queue.post(lambda: ran.append(("last", threading.current_thread())))
    assert queue.drain() == 5 and queue.drain() == 0
    assert [n for n, _ in ran] == [0, 1, 2, "last"]
    assert {thread for _, thread in ran} == {threading.main_thread()}
    assert "division by zero" in capsys.readouterr().err


def test_each_host_shows_the_common_settings_first_and_its_own_help():
    common = [p.name for p in schema.common("blender")]
    assert common == ["model", "resolution", "device", "precision"]
    assert [p.name for p in schema.common("nuke")] == common
    grouped = schema.grouped("blender")
    shown = [p.name for params in grouped.values() for p in params]
    assert sorted(shown + common) == sorted(p.name for p in schema.for_host("blender"))
    assert list(grouped) == list(dict.fromkeys(p.group for p in schema.for_host("blender")
                                               if not p.common))
    ocio = schema.get("ocio")
    assert "Blender" in ocio.help_for("blender") and "ocio://" not in ocio.help_for("blender")
    assert ocio.help_for("nuke") == ocio.help_for("cli") == ocio.help
    for param in schema.for_host("blender"):
        assert "--" not in param.help_for("blender"), param.name  # no command-line flags
