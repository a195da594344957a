"""OpenCue job XML: one whole-shot layer per shot, serialised offline, nothing left behind."""

from __future__ import annotations

import json
import os
import shlex
import xml.etree.ElementTree as ET

import pytest

from vrmbg.core.cli import main
from vrmbg.core.io.frames import parse_frame_spec

pytest.importorskip("outline", reason="opencue-pyoutline is not installed")

SHOTS = [
    {"name": "sh010", "input": "plates/sh010.####.exr", "output": "mattes/sh010.####.exr",
     "frames": "1001-1100", "input_colorspace": "ACEScg"},
    {"name": "sh020", "input": "plates/sh 020.%04d.dpx", "output": "mattes/sh020.####.exr",
     "frames": "1-9x2", "input_colorspace": "ARRI LogC4", "resolution": 512},
    {"name": "sh030", "input": "/abs/plates/sh030.####.exr", "output": "/abs/mattes/sh030.####.exr",
     "frames": "7"},
]


def write_job(tmp_path, *extra):
    shotlist = tmp_path / "show" / "shots.json"
    shotlist.parent.mkdir()
    shotlist.write_text(json.dumps({"shots": SHOTS}))
    out = tmp_path / "job.xml"
    # the plates of these shot lists are not on disk: the job is written unchecked
    assert main(["job", "opencue", str(shotlist), "-o", str(out), "--no-check", *extra]) == 0
    return ET.parse(out).getroot(), shotlist.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private home folder, to see whether pyoutline leaves session folders in it."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def layers(root):
    return {layer.get("name"): layer for layer in root.iter("layer")}


def test_one_layer_per_shot_with_its_range_and_a_whole_shot_chunk(tmp_path, home):
    root, _ = write_job(tmp_path)
    found = layers(root)
    assert list(found) == ["sh010", "sh020", "sh030"]
    for shot in SHOTS:
        layer = found[shot["name"]]
        frames = parse_frame_spec(shot["frames"])
        assert parse_frame_spec(layer.findtext("range")) == frames
        assert int(layer.findtext("chunk")) == len(frames)  # one task: the shot in order


def test_layer_commands_render_the_shot_with_merged_settings(tmp_path, home):
    root, folder = write_job(tmp_path, "--vrmbg", "/opt/vrmbg/bin/vrmbg", "--device", "cuda",
                             "--model", "/show/models/vrmbg3")
    found = layers(root)
    commands = {name: shlex.split(layer.findtext("cmd")) for name, layer in found.items()}
    sh010, sh020, sh030 = commands["sh010"], commands["sh020"], commands["sh030"]
    assert sh010[:5] == ["/opt/vrmbg/bin/vrmbg", "render",
                         str(folder / "plates" / "sh010.####.exr"), "-o",
                         str(folder / "mattes" / "sh010.####.exr")]
    assert sh020[2] == str(folder / "plates" / "sh 020.%04d.dpx")  # quoted: one word
    assert "--frames=1001-1100" in sh010 and "--frames=1-9x2" in sh020 and "--frames=7" in sh030
    assert "--input-colorspace=ACEScg" in sh010
    assert "--input-colorspace=ARRI LogC4" in sh020 and "--resolution=512" in sh020
    assert not any(a.startswith("--input-colorspace") for a in sh030)
    for command in commands.values():
        assert "--device=cuda" in command and "--model=/show/models/vrmbg3" in command


def test_a_thread_budget_books_that_many_cores_and_reaches_the_render(tmp_path, home):
    root, _ = write_job(tmp_path, "--threads", "6")
    for layer in layers(root).values():
        assert float(layer.findtext("cores")) == 6.0
        assert "--threads=6" in shlex.split(layer.findtext("cmd"))
    # Without --threads every layer is pinned to 4 and books 4 cores: on a CPU the thread
    # count is part of a chain's identity, so every host forms the same chain.
    (tmp_path / "default").mkdir()
    root, _ = write_job(tmp_path / "default")
    for layer in layers(root).values():
        assert float(layer.findtext("cores")) == 4.0
        assert "--threads=4" in shlex.split(layer.findtext("cmd"))
        assert layer.find("gpus") is None or layer.findtext("gpus") in ("", "0")


def test_cuda_layers_book_a_gpu(tmp_path, home):
    root, _ = write_job(tmp_path, "--device", "cuda")
    for layer in layers(root).values():
        assert layer.findtext("gpus") == "1"


def test_job_header_and_no_session_folder_left_behind(tmp_path, home):
    root, _ = write_job(tmp_path, "--show", "myshow", "--shot", "comp", "--user", "wrangler",
                        "--name", "mattes v1")
    assert root.findtext("show") == "myshow"
    assert root.findtext("shot") == "comp"
    assert root.findtext("user") == "wrangler"
    assert root.find("job").get("name") == "mattes_v1"  # made farm-safe
    assert os.listdir(home) == []  # pyoutline's ~/.opencue/sessions went to a temp folder


def test_default_job_name_comes_from_the_shot_list(tmp_path, home):
    root, _ = write_job(tmp_path)
    assert root.find("job").get("name") == "vrmbg_shots"
