"""`vrmbg job` checks every shot before writing a farm job: a typo in a shot list fails on
the TD's machine with the shot named, and no job file is written."""

from __future__ import annotations

import json

import pytest

from render_helpers import make_plates, run_cli
from vrmbg.core.errors import EXIT_INPUT, EXIT_MODEL, EXIT_OK

FRAMES = range(1001, 1004)


def _shotlist(tmp_path, **changes):
    make_plates(str(tmp_path / "plates"), FRAMES)
    shot = {"name": "sh010", "input": "plates/sh010.####.exr",
            "output": "mattes/sh010.####.exr", "frames": "1001-1003", **changes}
    path = tmp_path / "shots.json"
    path.write_text(json.dumps({"shots": [shot]}))
    return path


@pytest.mark.parametrize("engine", ["openjd", "opencue"])
@pytest.mark.parametrize("changes, code, words", [
    ({"input": "plates/sh01O.####.exr"}, EXIT_INPUT, "no frames found"),
    ({"frames": "1001-1010"}, EXIT_INPUT, "frame 1010 is after the shot's last frame 1003"),
    ({"input_colorspace": "ACEScgg"}, EXIT_INPUT, "unknown input colour space"),
    ({"model": "/no/such/show/models/vrmbg3"}, EXIT_MODEL, "no such model"),
], ids=["plates", "frames", "colour", "model"])
def test_a_bad_shot_fails_before_the_job_is_written(tmp_path, capsys, engine, changes, code,
                                                   words):
    if engine == "opencue":
        pytest.importorskip("outline")
    shotlist = _shotlist(tmp_path, **changes)
    job = tmp_path / "job.out"
    got, _, err = run_cli(["job", engine, str(shotlist), "-o", str(job)], capsys)
    assert got == code, err
    assert "shot 'sh010'" in err and words in err
    assert not job.exists()
    unchecked, _, err = run_cli(["job", engine, str(shotlist), "-o", str(job), "--no-check"],
                                capsys)
    assert unchecked == EXIT_OK, err
    assert job.exists()


def test_a_good_shot_list_is_written(tmp_path, capsys):
    shotlist = _shotlist(tmp_path, model="demo")
    job = tmp_path / "job.yaml"
    code, _, err = run_cli(["job", "openjd", str(shotlist), "-o", str(job)], capsys)
    assert code == EXIT_OK, err
    assert job.exists()
