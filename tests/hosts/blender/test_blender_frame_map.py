"""Scene frames to plate frames in the Blender add-on (frame_map and the plugin's frame facts
are standard library only, so they are checked here without Blender; the renders in
test_blender_addon.py check them in Blender)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from vrmbg.plugin.formats import is_movie
from vrmbg.plugin.frame_ranges import nearest_frame
from vrmbg.plugin.paths import frame_file, sequence_pattern

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir, "blender_addon", "frame_map.py")
_SPEC = importlib.util.spec_from_file_location("vrmbg_blender_frame_map", _PATH)
frame_map = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(frame_map)


def shown_file_frame(scene_frame: int, timing) -> int:
    """Blender's Image node rule (`BKE_image_user_frame_get`): the relative frame is clamped
    to 0..duration (wrapped when cyclic), then offset; a duration of 0 shows nothing."""
    if timing.frame_duration == 0:
        return 0
    relative = scene_frame - timing.frame_start + 1
    if timing.cyclic:
        relative = relative % timing.frame_duration or timing.frame_duration
    relative = min(max(relative, 0), timing.frame_duration)
    return relative + timing.frame_offset


@pytest.mark.parametrize("first,last", [(1001, 1024), (1, 10), (-5, 5), (86400, 86410),
                                        (1001, 1001), (1001, 1002)])
def test_scene_frame_n_shows_plate_frame_n(first, last):
    timing = frame_map.sequence_timing(first, last)
    for frame in range(first - 3, last + 4):
        assert shown_file_frame(frame, timing) == nearest_frame(frame, first, last), frame
    assert shown_file_frame(first - 20, timing) == first  # before the shot: its first frame
    assert shown_file_frame(last + 20, timing) == last
    # the frame the add-on asks the engine for (the host session clamps the same way)
    assert nearest_frame(first - 20, first, last) == first
    assert nearest_frame(last + 20, first, last) == last


@pytest.mark.parametrize("first,last", [(1001, 1048), (1001, 1001)])
def test_movie_frame_one_is_the_first_engine_frame(first, last):
    timing = frame_map.movie_timing(first, last)
    for frame in range(first - 3, last + 4):  # movie frame 1 is engine frame `first`
        assert shown_file_frame(frame, timing) == nearest_frame(frame, first, last) - first + 1


@pytest.mark.parametrize("name,pattern", [
    ("sh010.1003.exr", "sh010.####.exr"),
    ("sh010_v2.0001.dpx", "sh010_v2.####.dpx"),
    ("plate.12345.exr", "plate.#####.exr"),
    ("sh010-1001.exr", "sh010-####.exr"),
    ("sh010.####.exr", "sh010.####.exr"),
    ("sh010.%04d.exr", "sh010.%04d.exr"),
    ("still.exr", "still.exr"),
])
def test_any_frame_names_its_sequence(name, pattern):
    folder = os.path.join("shows", "x y", "plates é")
    assert sequence_pattern(os.path.join(folder, name)) == os.path.join(folder, pattern)


def test_frame_files_of_a_pattern():
    assert frame_file("/m/sh010.####.exr", 1003) == "/m/sh010.1003.exr"
    assert frame_file("/m/sh010.####.exr", -12) == "/m/sh010.-012.exr"  # as vrmbg writes
    assert is_movie("/edit/sh030.MOV") and not is_movie("/p/sh.1001.exr")
    assert is_movie("/edit/sh030.webm") and is_movie("/edit/sh030.m4v")  # PyAV reads both
