"""Facts of the wire that the engine and the hosts share, written once in plugin/: frame-range
text, plate file kinds, the cache root and frame files of a `####` pattern, and plugin/'s one
file-system module. Where core still has its own copy, both must give the same answers."""

from __future__ import annotations

import json
import os

import pytest

from vrmbg.core.errors import UsageError
from vrmbg.core.io import formats as core_formats
from vrmbg.core.io import frames as core_frames
from vrmbg.plugin import fs, paths
from vrmbg.plugin.formats import MOVIE_EXTENSIONS, is_movie
from vrmbg.plugin.frame_ranges import (format_frame_ranges, frame_runs, nearest_frame,
                                       parse_frame_ranges)

SPECS = ["1001-1010", "1001-1100x2,1200", "7", "-5--1", "-3-2", "1001 1005-1010",
         " 1001-1003 ", "1001-1003,1002", "", "1001,,1005", "1010-1001", "1001-1010x0", "x",
         "1001x2", "1-2000000", "a-b"]


def _engine(spec: str):
    try:
        return core_frames.parse_frame_spec(spec)
    except UsageError as exc:
        return ("error", exc.message)


def _plugin(spec: str):
    try:
        return parse_frame_ranges(spec)
    except ValueError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("spec", SPECS)
def test_frame_ranges_read_as_the_engine_reads_them(spec):
    assert _plugin(spec) == _engine(spec)


@pytest.mark.parametrize("frames", [[], [1001], [1001, 1002, 1003, 1005], list(range(1, 30, 3)),
                                    [-3, -2, -1, 5, 7, 9, 11]])
def test_frame_ranges_written_as_the_engine_writes_them(frames):
    text = format_frame_ranges(frames)
    assert text == core_frames.format_frame_ranges(frames)
    assert parse_frame_ranges(text, empty_ok=True) == sorted(set(frames))


def test_frame_runs_and_nearest_frames():
    assert frame_runs([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert (nearest_frame(990, 1001, 1010), nearest_frame(1005, 1001, 1010),
            nearest_frame(2000, 1001, 1010)) == (1001, 1005, 1010)


def test_movies_are_told_apart_by_the_same_extensions_pyav_reads():
    assert {".m4v", ".webm"} <= MOVIE_EXTENSIONS
    assert is_movie("/edit/sh030.MOV") and not is_movie("/p/sh.1001.exr")
    images = {ext for ext, kind in core_formats.FORMATS.items() if kind.reader != "movie"}
    assert not MOVIE_EXTENSIONS & images
    # until core/io/formats.py takes its movies from the plugin's list, the engine's must be
    # a part of it
    assert core_formats.MOVIE_EXTENSIONS <= MOVIE_EXTENSIONS


def test_the_cache_root_rule(tmp_path, monkeypatch):
    from vrmbg.core.engine.cache import default_cache_root
    home = str(tmp_path / "home")
    cases = [("", {}), ("", {"VRMBG_CACHE": "~/c"}), ("~/x", {"VRMBG_CACHE": "/y"}),
             ("", {"XDG_CACHE_HOME": "/xdg"}), ("", {"XDG_CACHE_HOME": "relative"})]
    for explicit, env in cases:
        monkeypatch.setenv("HOME", home)
        for name in ("VRMBG_CACHE", "XDG_CACHE_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert paths.default_cache_root(explicit) == default_cache_root(explicit), (explicit, env)
    assert paths.default_cache_root("", {"VRMBG_CACHE": "/given"}) == "/given"


def test_frame_files_of_a_pattern_are_the_engines():
    pattern = os.path.join("/m", "sh010.####.exr")
    engine = core_frames.SequencePattern.parse(pattern)
    for frame in (1003, -12, 7, 123456):
        assert paths.frame_file(pattern, frame) == engine.path_for(frame)


def test_plugin_writes_whole_files_and_deletes_quietly(tmp_path):
    target = str(tmp_path / "sub" / "record.json")
    fs.make_folder(os.path.dirname(target))
    assert fs.write_json(target, {"python": "/x"}, indent=2) == target
    with open(target, encoding="utf-8") as handle:
        assert json.load(handle) == {"python": "/x"}
    assert os.listdir(tmp_path / "sub") == ["record.json"]  # no temp file left
    with pytest.raises(TypeError):
        fs.write_json(target, {"bad": object()})
    assert os.listdir(tmp_path / "sub") == ["record.json"]  # a failed write leaves the old
    assert fs.remove_file(target) and not fs.remove_file(target) and not fs.remove_file("")
