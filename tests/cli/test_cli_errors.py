"""Every way the command line ends badly gives a documented code and one readable line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from render_helpers import clean_env, make_plates
from vrmbg.core.cli import main
from vrmbg.core.errors import EXIT_MODEL, EXIT_OK, EXIT_USAGE


def test_an_unknown_flag_with_json_still_prints_one_json_object(capsys):
    assert main(["render", "a.####.exr", "-o", "m.####.exr", "--bogus", "--json"]) == EXIT_USAGE
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["exit_code"] == EXIT_USAGE and "--bogus" in answer["error"]
    assert "Traceback" not in captured.err


def test_farm_tasks_get_an_openjd_fail_line_saying_whether_to_retry(capsys, monkeypatch,
                                                                    tmp_path):
    monkeypatch.setenv("VRMBG_PROGRESS", "plain")
    code = main(["render", str(tmp_path / "none.####.exr"), "-o", str(tmp_path / "m.####.exr")])
    out = capsys.readouterr().out
    fail = [line for line in out.splitlines() if line.startswith("openjd_fail: ")]
    assert len(fail) == 1 and f"[exit {code}: a retry will fail the same way" in fail[0]


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """`vrmbg info ... | head`: the pipe closes before vrmbg has written everything."""
    pattern = make_plates(str(tmp_path / "plates"), range(1001, 1004))
    process = subprocess.Popen([sys.executable, "-m", "vrmbg.core", "info", pattern],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == EXIT_OK, err
    assert "Traceback" not in err


def test_plates_or_output_in_a_folder_whose_name_is_not_utf8(tmp_path, model):
    """Python reads such names as lone surrogates, which the image libraries cannot take."""
    good = make_plates(str(tmp_path / "plates"), range(1001, 1003))
    made = make_plates(str(tmp_path / "made"), range(1001, 1003))
    bad_folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.rename(os.path.dirname(os.fsencode(made)), bad_folder)  # the libraries cannot write it
    bad_plates = os.path.join(os.fsdecode(bad_folder), os.path.basename(made))
    bad_output = os.path.join(os.fsdecode(bad_folder), "m.####.exr")
    for args in (["info", bad_plates], ["render", bad_plates, "-o", str(tmp_path / "m.####.exr"),
                                        "--model", model, "--device", "cpu"],
                 ["render", good, "-o", bad_output, "--model", model, "--device", "cpu"]):
        done = subprocess.run([sys.executable, "-m", "vrmbg.core", *args], capture_output=True,
                              timeout=300, env=clean_env())
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode == EXIT_USAGE, err
        assert "Traceback" not in err and "not UTF-8" in err and "caf\\xe9" in err
    assert not any(name.startswith(b"m.") for name in os.listdir(bad_folder))


def test_a_model_config_nested_too_deeply_is_a_model_error(tmp_path, capsys):
    folder = tmp_path / "model"
    assert main(["model", "init-random", str(folder), "--config", "tiny"]) == EXIT_OK
    (folder / "config.json").write_text('{"a":' * 100000 + "1" + "}" * 100000)
    capsys.readouterr()
    assert main(["model", "info", str(folder)]) == EXIT_MODEL
    err = capsys.readouterr().err
    assert "cannot read model config" in err and len(err.strip().splitlines()) == 1
