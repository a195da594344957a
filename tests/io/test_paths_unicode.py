"""Paths with spaces and non-ASCII characters work everywhere: plates, outputs, caches, model
folders, shot lists and OpenJD templates run by `openjd run` with the real `vrmbg`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from plate_factory import write_dpx_sequence
from render_helpers import make_plates, render_args, run_cli

from vrmbg.core.cli import main
from vrmbg.core.io.mattes import read_matte
from vrmbg.core.io.plate_info import describe

ODD = "shot ä ü é 漢字 'q' $HOME"  # spaces, accents, CJK, a quote and a shell variable
VRMBG = shutil.which("vrmbg") or os.path.join(os.path.dirname(sys.executable), "vrmbg")
OPENJD = shutil.which("openjd") or os.path.join(os.path.dirname(sys.executable), "openjd")


def test_info_render_and_cache_in_odd_folders(tmp_path, capsys, model):
    root = tmp_path / ODD
    plates = make_plates(str(root / "plates ø"), [1001, 1002], name="sh 010 ä.####.exr")
    models = root / "model é"
    shutil.copytree(model, models)
    output = str(root / "mattes ü" / "sh 010 ä.####.exr")
    cache = str(root / "cache ß")
    code, out, err = run_cli(["info", plates], capsys)
    assert code == 0 and "1001-1002" in out, err
    code, _out, err = run_cli(render_args(plates, output, str(models), "--resolution", "64",
                                          cache=cache), capsys)
    assert code == 0, err
    assert read_matte(output.replace("####", "1002")).shape == (64, 96)
    assert any(name for name in os.listdir(cache))
    code, out, err = run_cli(["cache", "ls", "--cache-dir", cache], capsys)
    assert code == 0 and "1001-1002" in out, err  # the chain is listed


def test_dpx_in_an_odd_folder(tmp_path):
    (tmp_path / ODD).mkdir()
    pattern = write_dpx_sequence(tmp_path / ODD, [1, 2], name="scan ü.####.dpx")
    assert describe(pattern)["frames"] == "1-2"


@pytest.mark.skipif(not os.path.exists(OPENJD), reason="openjd-cli is not installed")
def test_openjd_run_with_odd_paths(tmp_path, model):
    root = tmp_path / ODD
    make_plates(str(root / "plates ø"), [1001, 1002], name="sh010.####.exr")
    models = root / "model é"
    shutil.copytree(model, models)
    shots = root / "shots list ä.json"
    shots.write_text(json.dumps({"shots": [
        {"name": "sh010", "input": "plates ø/sh010.####.exr", "output": "mattes ü/sh010.####.exr",
         "frames": "1001-1002", "resolution": 64}]}), encoding="utf-8")
    job = root / "job ü.yaml"
    assert main(["job", "openjd", str(shots), "-o", str(job), "--device", "cpu",
                 "--threads", "1"]) == 0
    result = subprocess.run([OPENJD, "run", str(job), "-p", f"VrmbgExecutable={VRMBG}",
                             "-p", f"Model={models}"], capture_output=True, text=True,
                            cwd=str(root), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert read_matte(str(root / "mattes ü" / "sh010.1002.exr")).shape == (64, 96)
