"""`--keyframes` on the command line, in shot lists and in `vrmbg info`.

A render with keyframes writes the artist's matte at each keyframe and continues from it;
chunks of it equal a straight render; a bad keyframe is one line naming its file and frame
(exit 3); a shot list's `keyframes` resolves against the shot list's folder; `vrmbg info`
lists the keyframes found.
"""

from __future__ import annotations

import json
import os

import numpy as np
import OpenImageIO as oiio

from render_helpers import (assert_same_mattes, frame_file, make_plates, one_error_line,
                            read_frames, render_args, run_cli, run_json)
from vrmbg.core.errors import EXIT_INPUT
from vrmbg.core.farm.shotlist import load_shotlist
from vrmbg.core.io.mattes import read_matte_stamp

FRAMES = list(range(1001, 1007))
KEY = 1003
WIDTH, HEIGHT = 96, 64


def key_alpha() -> np.ndarray:
    """A soft disc: a matte no random model would make."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    return np.clip(1.5 - np.hypot(xx - 40, yy - 30) / 12, 0, 1).astype(np.float32)


def write_key(folder: str, frame: int, size=(WIDTH, HEIGHT)) -> str:
    """One EXR keyframe (channel A) in `folder`; returns the `####` pattern."""
    os.makedirs(folder, exist_ok=True)
    pattern = os.path.join(folder, "key.####.exr")
    width, height = size
    spec = oiio.ImageSpec(width, height, 1, oiio.HALF)
    spec.channelnames = ("A",)
    path = frame_file(pattern, frame)
    out = oiio.ImageOutput.create(path)
    pixels = np.zeros((height, width, 1), np.float32)
    pixels[..., 0] = np.resize(key_alpha(), (height, width))
    assert out.open(path, spec) and out.write_image(pixels), oiio.geterror()
    out.close()
    return pattern


def test_render_takes_the_keyframe_and_chunks_equal_a_straight_render(model, tmp_path, capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    keys = write_key(str(tmp_path / "keys"), KEY)
    plain = str(tmp_path / "plain" / "sh010.####.exr")
    run_json(render_args(plates, plain, model, "--progress", "quiet"), capsys)
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    summary = run_json(render_args(plates, straight, model, "--keyframes", keys,
                                   "--progress", "quiet"), capsys)
    assert summary["keyframes"] == [KEY]
    got, before = read_frames(straight, FRAMES), read_frames(plain, FRAMES)
    assert np.array_equal(got[KEY], key_alpha().astype(np.float16).astype(np.float32))
    for frame in FRAMES[:KEY - FRAMES[0]]:
        assert np.array_equal(got[frame], before[frame]), frame
    assert not np.array_equal(got[KEY + 1], before[KEY + 1])
    # the output says which frame is the artist's (and, shared with the cache, a resume sees it)
    marks = {f: (read_matte_stamp(frame_file(straight, f)) or {}).get("keyframe") for f in FRAMES}
    assert marks == {f: (1 if f == KEY else None) for f in FRAMES}

    chunked = str(tmp_path / "chunked" / "sh010.####.exr")
    for chunk in ("1005-1006", "1001-1002", "1003-1004"):
        run_json(render_args(plates, chunked, model, "--keyframes", keys, "--frames", chunk,
                             "--progress", "quiet"), capsys)
    assert_same_mattes(straight, chunked, FRAMES)


def test_a_keyframe_of_another_size_is_one_line_and_exit_3(model, tmp_path, capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    keys = write_key(str(tmp_path / "keys"), 1004, size=(48, 32))
    out = str(tmp_path / "out" / "sh010.####.exr")
    code, _, err = run_cli(render_args(plates, out, model, "--keyframes", keys,
                                       "--progress", "quiet"), capsys)
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert "key.1004.exr" in line and "frame 1004" in line and "48x32" in line
    assert not os.path.exists(frame_file(out, 1001))  # refused before any frame


def test_render_warns_when_the_pattern_finds_no_keyframe(model, tmp_path, capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES[:2])
    out = str(tmp_path / "out" / "sh010.####.exr")
    summary = run_json(render_args(plates, out, model, "--keyframes",
                                   str(tmp_path / "nokeys" / "key.####.exr"),
                                   "--progress", "quiet"), capsys)
    assert summary["keyframes"] == []
    assert any("no keyframe" in w for w in summary["warnings"])


def test_shot_lists_carry_keyframes_relative_to_their_folder(tmp_path):
    shots = {"shots": [{"name": "sh010", "input": "plates/sh010.####.exr",
                        "output": "mattes/sh010.####.exr", "frames": "1001-1006",
                        "keyframes": "roto/key.####.exr"}]}
    path = tmp_path / "shots.json"
    path.write_text(json.dumps(shots))
    (shot,) = load_shotlist(str(path))
    assert shot.settings["keyframes"] == str(tmp_path / "roto" / "key.####.exr")
    csv_path = tmp_path / "shots.csv"
    csv_path.write_text("name,input,output,frames,keyframes\n"
                        "sh010,p/sh010.####.exr,m/sh010.####.exr,1001-1006,roto/key.%04d.png\n")
    (shot,) = load_shotlist(str(csv_path))
    assert shot.settings["keyframes"] == str(tmp_path / "roto" / "key.%04d.png")


def test_render_shots_passes_the_keyframes_to_each_shot(model, tmp_path, capsys):
    make_plates(str(tmp_path / "plates"), FRAMES[:4])
    write_key(str(tmp_path / "roto"), KEY)
    shots = {"shots": [{"name": "sh010", "input": "plates/sh010.####.exr",
                        "output": "mattes/sh010.####.exr", "frames": "1001-1004",
                        "keyframes": "roto/key.####.exr", "model": model,
                        "device": "cpu"}]}
    (tmp_path / "shots.json").write_text(json.dumps(shots))
    code, out, err = run_cli(["render-shots", str(tmp_path / "shots.json"), "--dry-run"], capsys)
    assert code == 0, err
    assert f"--keyframes={tmp_path / 'roto' / 'key.####.exr'}" in out


def test_info_lists_the_keyframes_found(tmp_path, capsys):
    plates = make_plates(str(tmp_path / "plates"), FRAMES)
    keys = write_key(str(tmp_path / "keys"), 1002)
    write_key(str(tmp_path / "keys"), 1005)
    write_key(str(tmp_path / "keys"), 1100)  # not a plate frame
    code, out, err = run_cli(["info", plates, "--keyframes", keys, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["keyframes"] == {"pattern": keys, "frames": [1002, 1005],
                                            "outside": [1100]}
    code, out, err = run_cli(["info", plates, "--keyframes", keys], capsys)
    assert code == 0, err
    line = next(text for text in out.splitlines() if text.split()[0] == "keyframes")
    assert "1002, 1005 (2 found)" in line and "1100" in line
