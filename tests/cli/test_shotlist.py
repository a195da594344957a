"""Shot lists: JSON/CSV loading, validation messages, settings merged into render commands."""

from __future__ import annotations

import argparse
import csv
import json
import os

import pytest

from vrmbg.core.cli.options import add_schema_arguments
from vrmbg.core.errors import EXIT_USAGE, UsageError
from vrmbg.core.farm.shotlist import (chunk_specs, job_settings, load_shotlist, merged_settings,
                                      render_args, valid_keys)
from vrmbg.core.io.frames import parse_frame_spec
from vrmbg.plugin import schema

SH010 = {"name": "sh010", "input": "plates/sh010.####.exr",
         "output": "mattes/sh010.####.exr", "frames": "1001-1010",
         "input_colorspace": "ACEScg"}
SH020 = {"name": "sh020", "input": "/abs/plates/sh020.%04d.dpx",
         "output": "mattes/sh020.####.exr", "frames": "1-9x2,20"}


def write_json(folder, shots, name="shots.json"):
    path = folder / name
    path.write_text(json.dumps({"shots": shots}))
    return path


def write_csv(folder, shots, name="shots.csv"):
    keys = sorted({key for shot in shots for key in shot})
    path = folder / name
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(shots)
    return path


def usage_error(path) -> UsageError:
    with pytest.raises(UsageError) as info:
        load_shotlist(path)
    assert info.value.exit_code == EXIT_USAGE
    assert "\n" not in str(info.value)
    return info.value


def render_parser() -> argparse.ArgumentParser:
    """A parser shaped like `vrmbg render`'s, to check the generated flags parse back."""
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("-o", dest="output")
    parser.add_argument("--frames")
    add_schema_arguments(parser)
    return parser


# -- loading --------------------------------------------------------------------------


def test_json_paths_resolve_against_the_shot_list_folder(tmp_path, monkeypatch):
    folder = tmp_path / "show"
    folder.mkdir()
    path = write_json(folder, [SH010, SH020])
    monkeypatch.chdir(tmp_path)  # not the shot list's folder
    first, second = load_shotlist(path)
    assert first.name == "sh010"
    assert first.input == str(folder / "plates" / "sh010.####.exr")
    assert first.output == str(folder / "mattes" / "sh010.####.exr")
    assert second.input == "/abs/plates/sh020.%04d.dpx"
    assert first.frames == tuple(range(1001, 1011))
    assert second.frames == (1, 3, 5, 7, 9, 20)
    assert dict(first.settings) == {"input_colorspace": "ACEScg"}
    assert dict(second.settings) == {}


def test_csv_gives_the_same_shots_as_json(tmp_path):
    from_json = load_shotlist(write_json(tmp_path, [SH010, SH020]))
    from_csv = load_shotlist(write_csv(tmp_path, [SH010, SH020]))
    assert from_csv == from_json


def test_csv_values_are_coerced_to_schema_types(tmp_path):
    shot = dict(SH010, resolution="512", content_hash="yes", device="cpu")
    (loaded,) = load_shotlist(write_csv(tmp_path, [shot]))
    assert loaded.settings["resolution"] == 512
    assert loaded.settings["content_hash"] is True
    assert loaded.settings["device"] == "cpu"


def test_path_settings_resolve_but_uris_and_hub_ids_do_not(tmp_path):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    shots = [dict(SH010, cache_dir="cache", ocio="ocio://studio-config-latest",
                  model="models/tiny"),
             dict(SH020, model="briaai/VRMBG-3.0", ocio="configs/show.ocio")]
    first, second = load_shotlist(write_json(tmp_path, shots))
    assert first.settings["cache_dir"] == str(tmp_path / "cache")
    assert first.settings["ocio"] == "ocio://studio-config-latest"
    assert first.settings["model"] == str(tmp_path / "models" / "tiny")
    assert second.settings["model"] == "briaai/VRMBG-3.0"
    assert second.settings["ocio"] == str(tmp_path / "configs" / "show.ocio")


# -- validation -----------------------------------------------------------------------


def test_unknown_key_names_the_shot_the_key_and_the_valid_keys(tmp_path):
    error = usage_error(write_json(tmp_path, [SH010, dict(SH020, colourspace="ACEScg")]))
    text = str(error)
    assert "sh020" in text and "'colourspace'" in text
    for key in ("input_colorspace", "frames", "model", "preroll"):
        assert key in text
    assert str(tmp_path / "shots.json") in text


def test_valid_keys_come_from_the_schema():
    keys = valid_keys()
    assert keys[:4] == ["name", "input", "output", "frames"]
    # every command-line setting but the one only the person running vrmbg may give
    assert set(keys[4:]) == {p.name for p in schema.for_host("cli")} - {"trust_remote_code"}


def test_a_shot_list_cannot_switch_on_downloaded_model_code(tmp_path):
    """A data file must never run the weights' own model.py."""
    path = tmp_path / "shots.json"
    path.write_text(json.dumps({"shots": [
        {"name": "sh010", "input": "a.####.exr", "output": "m.####.exr", "frames": "1-3",
         "trust_remote_code": True}]}))
    with pytest.raises(UsageError, match="trust_remote_code cannot come from a shot list"):
        load_shotlist(path)


def test_a_shot_list_nested_too_deeply_is_a_usage_error(tmp_path):
    path = tmp_path / "shots.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(UsageError, match="nests too deeply"):
        load_shotlist(path)


@pytest.mark.parametrize("key", ["name", "input", "output", "frames"])
def test_missing_required_key(tmp_path, key):
    shot = {k: v for k, v in SH010.items() if k != key}
    text = str(usage_error(write_json(tmp_path, [shot])))
    assert key in text


def test_bad_frames_name_the_shot(tmp_path):
    text = str(usage_error(write_json(tmp_path, [dict(SH010, frames="1100-1001")])))
    assert "sh010" in text and "frames" in text


@pytest.mark.parametrize("name", ["sh 010", "sh/010", "-sh010", "sh010;rm", "a" * 49, "é01"])
def test_unsafe_names_are_refused(tmp_path, name):
    text = str(usage_error(write_json(tmp_path, [dict(SH010, name=name)])))
    assert "farm-safe" in text


def test_names_must_be_unique_ignoring_case(tmp_path):
    shots = [SH010, dict(SH020, name="SH010")]
    assert "used twice" in str(usage_error(write_json(tmp_path, shots)))


def test_two_shots_cannot_write_the_same_output(tmp_path):
    shots = [SH010, dict(SH020, output=SH010["output"])]
    text = str(usage_error(write_json(tmp_path, shots)))
    assert "sh010" in text and "sh020" in text and "same output" in text


def test_bad_setting_value_names_the_shot_and_setting(tmp_path):
    text = str(usage_error(write_json(tmp_path, [dict(SH010, device="tpu")])))
    assert "sh010" in text and "device" in text and "tpu" in text


@pytest.mark.parametrize("content", ['{"shots": [', '{"shots": {}}', '{"shots": []}',
                                     '{"shots": ["sh010"]}'])
def test_malformed_files(tmp_path, content):
    path = tmp_path / "shots.json"
    path.write_text(content)
    assert str(path) in str(usage_error(path))


def test_missing_file(tmp_path):
    assert "cannot read" in str(usage_error(tmp_path / "nope.json"))


# -- settings and commands ------------------------------------------------------------


def test_shot_settings_override_job_wide_ones(tmp_path):
    sh010, sh020 = load_shotlist(write_json(tmp_path, [SH010, SH020]))
    job = job_settings({"input_colorspace": "ARRI LogC4", "device": "cpu"})
    assert merged_settings(sh010, job)["input_colorspace"] == "ACEScg"
    assert merged_settings(sh020, job)["input_colorspace"] == "ARRI LogC4"
    assert merged_settings(sh020, job)["device"] == "cpu"


def test_render_args_parse_back_to_the_merged_settings(tmp_path):
    shots = [dict(SH010, resolution=512, content_hash=True, preroll=8),
             dict(SH020, frames="-5--1", model="briaai/VRMBG-3.0")]
    job = job_settings({"device": "cpu", "precision": "fp32", "model": "demo",
                        "display": "sRGB - Display", "view": "ACES 2.0 - SDR 100 nits (Rec.709)"})
    parser = render_parser()
    for shot in load_shotlist(write_json(tmp_path, shots)):
        args = render_args(shot, job)
        assert args[0] == "render"
        parsed = parser.parse_args(args[1:])
        assert parsed.input == shot.input and parsed.output == shot.output
        assert parse_frame_spec(parsed.frames) == list(shot.frames)
        merged = merged_settings(shot, job)
        for param in schema.for_host("cli"):
            assert getattr(parsed, param.name) == merged[param.name], param.name


def test_only_non_default_settings_become_flags(tmp_path):
    (shot,) = load_shotlist(write_json(tmp_path, [{k: v for k, v in SH010.items()
                                                   if k != "input_colorspace"}]))
    job = job_settings({"device": "auto", "precision": "bf16"})
    args = render_args(shot, job)
    assert args == ["render", shot.input, "-o", shot.output, "--frames=1001-1010",
                    "--precision=bf16"]


def test_job_wide_paths_resolve_against_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = job_settings({"cache_dir": "cache", "ocio": "ocio://cg-config-latest"})
    assert job["cache_dir"] == os.path.join(str(tmp_path), "cache")
    assert job["ocio"] == "ocio://cg-config-latest"
    with pytest.raises(UsageError):
        job_settings({"precision": "int8"})


def test_chunks_cover_the_shot_in_order(tmp_path):
    (shot,) = load_shotlist(write_json(tmp_path, [dict(SH010, frames="1001-1023,1030-1040x2")]))
    specs = chunk_specs(shot, 10)
    frames = [parse_frame_spec(spec) for spec in specs]
    assert [len(f) for f in frames] == [10, 10, 9]
    assert [frame for chunk in frames for frame in chunk] == list(shot.frames)
    assert chunk_specs(shot, 0) == [shot.frame_spec]
