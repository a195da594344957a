"""`vrmbg info`: text and JSON descriptions of plate sequences, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from plate_factory import TIMECODE_01, Part, ramp_rgb, write_dpx, write_exr_sequence, write_parts

from vrmbg.core.cli import main


def run_info(capsys, *args):
    code = main(["info", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_output(tmp_path, capsys):
    pattern = write_exr_sequence(tmp_path, [1001, 1002, 1003, 1006], data_window=None,
                                 attributes={"smpte:TimeCode": ("timecode", TIMECODE_01),
                                             "FramesPerSecond": ("rational", (24, 1)),
                                             "studio:shot": ("string", "sh010")})
    code, out, err = run_info(capsys, pattern)
    assert code == 0 and err == ""
    assert "1001-1003,1006 (4 frames)" in out
    assert "1004-1005 (2 missing)" in out
    assert "48x32" in out
    assert "R, G, B" in out
    assert "01:00:00:00" in out
    assert "studio:shot = sh010" in out


def test_json_output(tmp_path, capsys):
    write_exr_sequence(tmp_path, [-2, -1, 0, 1], name="neg.####.exr")
    code, out, _ = run_info(capsys, tmp_path / "neg.%04d.exr", "--json")
    assert code == 0
    facts = json.loads(out)
    assert facts["frames"] == "-2-1" and facts["frame_count"] == 4 and facts["gaps"] == []
    assert facts["resolution"] == [48, 32]
    assert facts["display_window"] == [0, 0, 48, 32] and facts["data_window"] == [0, 0, 48, 32]
    assert facts["channels"] == ["R", "G", "B"] and facts["pixel_type"] == "half"


def test_multipart_layer_and_part(tmp_path, capsys):
    pixels = ramp_rgb(8, 8, channels=4)
    path = write_parts(tmp_path / "mp.exr", [
        Part(("R", "G", "B", "A"), pixels, name="rgba"),
        Part(("beauty.R", "beauty.G", "beauty.B"), pixels[..., :3], name="beauty")])
    code, out, _ = run_info(capsys, path, "--layer", "beauty", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["part"] == "beauty"
    assert facts["selected_channels"] == ["beauty.R", "beauty.G", "beauty.B"]
    assert [p["name"] for p in facts["parts"]] == ["rgba", "beauty"]
    code, out, _ = run_info(capsys, path, "--part", "1")
    assert code == 0 and "part 'beauty'" in out


def test_dpx_colour_metadata(tmp_path, capsys):
    write_dpx(tmp_path / "scan.0101.dpx", np.full((4, 6, 3), 0.5, np.float32), bits=10,
              attributes={"dpx:Transfer": ("string", "Logarithmic")})
    code, out, _ = run_info(capsys, tmp_path / "scan.####.dpx")
    assert code == 0
    assert "dpx, uint16 (10-bit)" in out
    assert "dpx:Transfer=Logarithmic" in out
    assert "101 (1 frame)" in out


def test_unknown_layer_exits_3_with_one_line(tmp_path, capsys):
    pattern = write_exr_sequence(tmp_path, [7])
    code, out, err = run_info(capsys, pattern, "--layer", "spec")
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and "frame 7" in err and "plain channels: R, G, B" in err


def test_no_frames_exits_3(tmp_path, capsys):
    code, _, err = run_info(capsys, tmp_path / "nothing.####.exr")
    assert code == 3 and "no frames found" in err


def test_bad_pattern_exits_2(tmp_path, capsys):
    code, _, err = run_info(capsys, tmp_path / "a.####.%04d.exr")
    assert code == 2 and "frame token" in err


def test_console_entry_point(tmp_path):
    pattern = write_exr_sequence(tmp_path, [1, 2])
    result = subprocess.run([sys.executable, "-m", "vrmbg.core", "info", pattern, "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == "1-2"


def test_movie_input(tmp_path, capsys):
    from vrmbg.core.io.movie_writer import write_movie

    path = str(tmp_path / "clip.mov")
    frames = [np.full((16, 32, 3), 0.25 * i, np.float32) for i in range(3)]
    write_movie(path, frames, fps=24, kind="composite", timecode="01:00:00:00")
    code, out, _ = run_info(capsys, path, "--json")
    facts = json.loads(out)
    assert code == 0 and facts["format"] == "movie"
    assert facts["frame_count"] == 3 and facts["resolution"] == [32, 16]
    assert facts["fps"] == 24.0 and facts["timecode"] == "01:00:00:00"
    code, _, err = run_info(capsys, path, "--layer", "beauty")
    assert code == 2 and "layers" in err


def test_the_standard_exr_frame_rate_is_read(tmp_path, capsys):
    pattern = write_exr_sequence(tmp_path, [1001], attributes={
        "framesPerSecond": ("rational", (25, 1))})
    code, out, _ = run_info(capsys, pattern, "--json")
    assert code == 0 and json.loads(out)["fps"] == 25


def test_a_layered_exr_without_layer_says_what_is_there(tmp_path, capsys):
    pixels = ramp_rgb(8, 8, channels=6)
    path = write_parts(tmp_path / "layered.0001.exr", [Part(
        ("diffuse.R", "diffuse.G", "diffuse.B", "spec.R", "spec.G", "spec.B"), pixels)])
    code, out, err = run_info(capsys, path)
    assert code == 0, err
    assert "a render needs --layer (one of diffuse, spec)" in out
    code, out, _ = run_info(capsys, path, "--json")
    assert code == 0 and json.loads(out)["needs_layer"] == ["diffuse", "spec"]
