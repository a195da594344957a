"""`vrmbg render` in the situations a farm and a pipeline bring: other spellings and mounts of
one plate, pre-roll mattes upgraded to exact ones, bad pixels, and bad cache folders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from plate_factory import ramp_rgb, write_exr
from render_helpers import (FIRST, exr_pixels, exr_spec, frame_file, make_plates, read_frames,
                            render_args, run_cli, run_json)
from vrmbg.core.io.mattes import read_matte_stamp
from vrmbg.core.errors import EXIT_USAGE
from vrmbg.core.farm.shotlist import job_settings

FRAMES = range(FIRST, FIRST + 6)


def test_other_spellings_and_a_symlinked_folder_are_the_same_shot(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    os.symlink(tmp_path / "plates", tmp_path / "mounted")
    output = str(tmp_path / "mattes" / "sh010.####.exr")
    first = run_json(render_args(pattern, output, model), capsys)
    assert first["frames_computed"] == len(FRAMES)
    for spelling in (str(tmp_path / "plates" / "sh010.%04d.exr"),
                     str(tmp_path / "plates" / "sh010.$F4.exr"),
                     str(tmp_path / "mounted" / "sh010.####.exr")):
        again = run_json(render_args(spelling, output, model), capsys)
        assert again["frames_skipped_existing"] == len(FRAMES), spelling
        assert again["frames_computed"] == 0, spelling
        assert again["chain_id"] == first["chain_id"], spelling


def test_an_exact_render_upgrades_this_shots_preroll_mattes(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    output = str(tmp_path / "mattes" / "sh010.####.exr")
    chunk = run_json(render_args(pattern, output, model, "--frames", "1004-1006",
                                 "--preroll", "1"), capsys)
    assert chunk["exact"] is False
    assert read_matte_stamp(frame_file(output, 1004))["exact"] == 0
    full = run_json(render_args(pattern, output, model), capsys)  # no --overwrite needed
    assert full["exact"] is True
    for frame in FRAMES:
        assert read_matte_stamp(frame_file(output, frame))["exact"] == 1, frame


def test_nan_and_inf_pixels_are_reported_per_frame(tmp_path, model, capsys):
    pattern = make_plates(str(tmp_path / "plates"), FRAMES)
    pixels = ramp_rgb(64, 96, 1003)
    pixels[:4, :5] = np.nan
    pixels[10, 10] = np.inf
    write_exr(frame_file(pattern, 1003), np.ascontiguousarray(pixels))
    summary = run_json(render_args(pattern, str(tmp_path / "m" / "sh010.####.exr"), model),
                       capsys)
    warnings = [w for w in summary["warnings"] if "NaN/Inf" in w]
    assert len(warnings) == 1 and warnings[0].startswith("frame 1003: 21 ")


def test_cache_commands_refuse_a_file_as_cache_folder(tmp_path, capsys):
    not_a_folder = tmp_path / "plate.exr"
    not_a_folder.write_bytes(b"x")
    code, _, err = run_cli(["cache", "ls", "--cache-dir", str(not_a_folder)], capsys)
    assert code == EXIT_USAGE
    assert err.count("\n") == 1 and "not a folder" in err and "Traceback" not in err


def test_cache_commands_warn_about_a_missing_cache_folder(tmp_path, capsys):
    code, _, err = run_cli(["cache", "prune", "--max-size", "0",
                            "--cache-dir", str(tmp_path / "typo")], capsys)
    assert code == 0 and "no cache folder" in err


def test_bundled_model_keyword_is_not_taken_for_a_folder(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()  # e.g. the output of `vrmbg demo demo`
    monkeypatch.chdir(tmp_path)
    assert job_settings({"model": "demo"})["model"] == "demo"
    (tmp_path / "mymodel").mkdir()
    assert job_settings({"model": "mymodel"})["model"] == str(tmp_path / "mymodel")


# A display window away from the origin, so a matte written without the plate's header (at
# (0, 0) and the size of the pixels) is caught; the data windows are (x, y, width, height).
OFFSET_DISPLAY = (10, 20, 96, 64)


def _timecode(frame_index: int) -> tuple[int, int]:
    """01:00:00:FF as packed SMPTE BCD, FF = frame_index (below 10)."""
    return (0x01000000 | frame_index, 0)


def _attribute_types(spec) -> dict[str, str]:
    return {str(p.name): str(p.type) for p in spec.extra_attribs}


@pytest.mark.parametrize("data_window, expected_data", [
    ((30, 28, 50, 40), (30, 28, 50, 40)),  # cropped bbox inside the display window: kept
    ((4, 30, 60, 70), (10, 30, 54, 54)),  # sticks out left and bottom: clipped to the display
], ids=["cropped-inside", "clipped-to-display"])
def test_matte_keeps_an_offset_display_window_data_window_and_plate_metadata(
        tmp_path, model, capsys, data_window, expected_data):
    folder = tmp_path / "plates"
    folder.mkdir()
    pattern = str(folder / "sh040.####.exr")
    frames = [1001, 1002, 1003]
    for index, frame in enumerate(frames, start=1):
        pixels = ramp_rgb(data_window[3], data_window[2], frame)
        write_exr(frame_file(pattern, frame), pixels, data_window=data_window,
                  display_window=OFFSET_DISPLAY,
                  attributes={"smpte:TimeCode": ("timecode", _timecode(index)),
                              "FramesPerSecond": ("rational", (25, 1)),
                              "studio:shotName": ("string", f"sh040 take {index}")})
    output = str(tmp_path / "mattes" / "sh040_matte.####.exr")
    summary = run_json(render_args(pattern, output, model, cache=str(tmp_path / "c")), capsys)
    assert summary["frames_computed"] == len(frames)

    for index, frame in enumerate(frames, start=1):
        spec = exr_spec(frame_file(output, frame))
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == OFFSET_DISPLAY
        assert (spec.x, spec.y, spec.width, spec.height) == expected_data, frame
        # each frame keeps its own plate's metadata, with the plate's types
        assert tuple(spec.getattribute("smpte:TimeCode")) == _timecode(index), frame
        # the frame rate under the standard EXR name, whatever the plate called it
        assert tuple(spec.getattribute("framesPerSecond")) == (25, 1), frame
        assert spec.getattribute("studio:shotName") == f"sh040 take {index}", frame
        types = _attribute_types(spec)
        assert types["smpte:TimeCode"] == "timecode", types
        assert types["framesPerSecond"] == "rational", types
        assert types["studio:shotName"] == "string", types

        channels, pixels = exr_pixels(frame_file(output, frame))
        assert channels == ("A",)
        assert pixels.shape == (expected_data[3], expected_data[2], 1)
        alpha = read_frames(output, [frame])[frame]  # over the whole display window
        assert alpha.shape == (OFFSET_DISPLAY[3], OFFSET_DISPLAY[2])
        assert np.isfinite(alpha).all()
        x0, y0 = expected_data[0] - OFFSET_DISPLAY[0], expected_data[1] - OFFSET_DISPLAY[1]
        inside = np.zeros(alpha.shape, dtype=bool)
        inside[y0:y0 + expected_data[3], x0:x0 + expected_data[2]] = True
        assert not alpha[~inside].any(), "alpha outside the data window must be 0"
        assert alpha[inside].tobytes() == pixels[..., 0].tobytes()
