"""Frame specs, frame-name patterns, discovery on disk and gap reports."""

from __future__ import annotations

import os

import pytest

from vrmbg.core.errors import UsageError
from vrmbg.core.io.frames import (SequencePattern, find_gaps, format_frame_ranges,
                               parse_frame_spec)


@pytest.mark.parametrize("spec, expected", [
    ("7", [7]),
    ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
    ("1001-1009x2", [1001, 1003, 1005, 1007, 1009]),
    ("1001-1010x4", [1001, 1005, 1009]),
    ("1001,1005-1007", [1001, 1005, 1006, 1007]),
    ("1001, 1003 1005", [1001, 1003, 1005]),
    ("-5--1", [-5, -4, -3, -2, -1]),
    ("-3-2", [-3, -2, -1, 0, 1, 2]),
    ("-7", [-7]),
    ("5,1-3,2", [1, 2, 3, 5]),
])
def test_parse_frame_spec(spec, expected):
    assert parse_frame_spec(spec) == expected


@pytest.mark.parametrize("spec", [
    "", "  ", "abc", "1001-", "-", "1001--", "10-1", "1-10x0", "1-10x", "1,,2", "1.5",
    "1001-1100y2", "0-99999999",
])
def test_malformed_spec_is_a_usage_error(spec):
    with pytest.raises(UsageError) as caught:
        parse_frame_spec(spec)
    assert "\n" not in str(caught.value)


def test_usage_error_quotes_the_bad_item():
    with pytest.raises(UsageError, match="'10-1'"):
        parse_frame_spec("1,10-1")


@pytest.mark.parametrize("frames, text", [
    ([1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1012], "1001-1010,1012"),
    ([1, 3, 5, 7], "1-7x2"),
    ([1, 3], "1,3"),
    ([-5, -4, -3, -2, -1], "-5--1"),
    ([-2, -1, 0, 1], "-2-1"),
    ([5], "5"),
    ([], ""),
    ([3, 1, 2, 2], "1-3"),
])
def test_format_frame_ranges(frames, text):
    assert format_frame_ranges(frames) == text


@pytest.mark.parametrize("frames", [
    [1001, 1002, 1005, 1007, 1009, 1011, 1020],
    [-10, -9, -7, 0, 1, 2, 50, 60, 70],
    list(range(1, 200, 3)) + [500],
])
def test_formatted_ranges_parse_back(frames):
    assert parse_frame_spec(format_frame_ranges(frames)) == sorted(set(frames))


def test_find_gaps():
    assert find_gaps([1001, 1002, 1005, 1006, 1010]) == [(1003, 1004), (1007, 1009)]
    assert find_gaps([1010, 1001]) == [(1002, 1009)]
    assert find_gaps([-3, 1]) == [(-2, 0)]
    assert find_gaps([1, 2, 3]) == []
    assert find_gaps([]) == []


@pytest.mark.parametrize("pattern, padding, frame, name", [
    ("plate.####.exr", 4, 1001, "plate.1001.exr"),
    ("plate.##.exr", 2, 7, "plate.07.exr"),
    ("plate.%04d.exr", 4, 7, "plate.0007.exr"),
    ("plate.%d.exr", 1, 7, "plate.7.exr"),
    ("plate.@.exr", 1, 7, "plate.7.exr"),
    ("plate_@@@@.dpx", 4, 42, "plate_0042.dpx"),
    ("plate.$F4.exr", 4, 1001, "plate.1001.exr"),
    ("plate.$F.exr", 1, 12, "plate.12.exr"),
    ("####.exr", 4, 3, "0003.exr"),
    ("plate.####.exr", 4, 12345, "plate.12345.exr"),
])
def test_pattern_forms(tmp_path, pattern, padding, frame, name):
    parsed = SequencePattern.parse(str(tmp_path / pattern))
    assert parsed.is_sequence
    assert parsed.padding == padding
    assert parsed.path_for(frame) == str(tmp_path / name)


@pytest.mark.parametrize("frame, name", [(-1, "p.-001.exr"), (-12, "p.-012.exr"),
                                         (-1234, "p.-1234.exr"), (0, "p.0000.exr")])
def test_negative_frames_pad_like_nuke(frame, name):
    assert SequencePattern.parse("p.####.exr").path_for(frame) == name


def test_plain_file_is_a_one_frame_sequence(tmp_path):
    still = tmp_path / "still.exr"
    parsed = SequencePattern.parse(str(still))
    assert not parsed.is_sequence
    assert parsed.discover() == []
    still.write_bytes(b"x")
    assert parsed.discover() == [1]
    assert parsed.path_for(50) == str(still)
    numbered = tmp_path / "shot.1001.exr"
    numbered.write_bytes(b"x")
    assert SequencePattern.parse(str(numbered)).discover() == [1001]


def test_houdini_variables_that_are_not_frames_are_text():
    parsed = SequencePattern.parse("$FPS_plate.$F4.exr")
    assert parsed.path_for(3) == "$FPS_plate.0003.exr"


def test_two_tokens_are_refused():
    with pytest.raises(UsageError):
        SequencePattern.parse("a.####.%04d.exr")


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"x")


@pytest.mark.parametrize("pattern", ["plate.####.exr", "plate.%04d.exr", "plate.@@@@.exr",
                                     "plate.$F4.exr"])
def test_discover_finds_frames_and_gaps(tmp_path, pattern):
    _touch(tmp_path, "plate.1001.exr", "plate.1002.exr", "plate.1005.exr", "plate.-001.exr",
           "plate.12345.exr")
    _touch(tmp_path, "plate.01003.exr", "plate.1003.exr.bak", "plate.1004.dpx", "other.1006.exr",
           "plate.abcd.exr", "plate.100.exr", ".plate.1007.vrmbg-tmp-1-ab.exr")
    frames = SequencePattern.parse(str(tmp_path / pattern)).discover()
    assert frames == [-1, 1001, 1002, 1005, 12345]
    assert find_gaps([1001, 1002, 1005]) == [(1003, 1004)]


def test_discover_unpadded(tmp_path):
    _touch(tmp_path, "p.1.exr", "p.10.exr", "p.-3.exr", "p.007.exr")
    assert SequencePattern.parse(str(tmp_path / "p.%d.exr")).discover() == [-3, 1, 10]


def test_discover_missing_folder(tmp_path):
    assert SequencePattern.parse(str(tmp_path / "nope" / "p.####.exr")).discover() == []


def test_discover_relative_pattern(tmp_path, monkeypatch):
    _touch(tmp_path, "p.0001.exr", "p.0002.exr")
    monkeypatch.chdir(tmp_path)
    parsed = SequencePattern.parse("p.####.exr")
    assert parsed.discover() == [1, 2]
    assert os.path.exists(parsed.path_for(2))
