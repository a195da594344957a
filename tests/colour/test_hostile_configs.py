"""Model folders and shot lists that lie: clear one-line errors with the documented exit
codes (4 for models, 2 for shot lists), never a traceback."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
from render_helpers import run_cli

from vrmbg.core.errors import EXIT_MODEL, EXIT_USAGE, ModelError, UsageError
from vrmbg.core.farm.shotlist import load_shotlist
from vrmbg.core.model.loader import load_model

GOOD_SHOT = {"name": "sh010", "input": "p/sh010.####.exr", "output": "m/sh010.####.exr",
             "frames": "1001-1010"}


@pytest.fixture
def folder(tmp_path, model):
    """A copy of the tiny model folder to damage."""
    target = tmp_path / "model ä"
    shutil.copytree(model, target)
    return target


def edit_header(path, change):
    """Rewrite a safetensors header through `change(header_dict)`, keeping the data."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    raw = json.dumps(change(header)).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length:])


def tensor_names(header):
    return [k for k in header if k != "__metadata__"]


def expect_model_error(folder, capsys, *needles):
    with pytest.raises(ModelError) as caught:
        load_model(str(folder), device="cpu", precision="fp32")
    text = str(caught.value)
    assert "\n" not in text and str(folder) in text
    for needle in needles:
        assert needle in text
    code, _out, err = run_cli(["model", "info", str(folder)], capsys)
    assert code == EXIT_MODEL and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_that_is_not_json(folder, capsys):
    (folder / "config.json").write_text('{"architecture": "vrmbg-birefnet", ')
    expect_model_error(folder, capsys, "config.json", "cannot read model config")


@pytest.mark.parametrize("key, value, words", [
    ("window_size", 8.5, "whole number"), ("embed_dim", "16", "whole number"),
    ("depths", [2, "x", 2, 2], "list of whole numbers"), ("batch_norm", "yes", "true/false"),
    ("mlp_ratio", "four", "a number"), ("extra", [1], "an object"),
    ("dec_inter_channels", 0, "positive")])
def test_config_with_wrong_types(folder, capsys, key, value, words):
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    expect_model_error(folder, capsys, "config.json", key, words)


def test_safetensors_header_lying_about_sizes(folder, capsys):
    def grow(header):
        name = tensor_names(header)[0]
        header[name]["shape"] = [header[name]["shape"][0] * 2] + header[name]["shape"][1:]
        return header

    edit_header(folder / "model.safetensors", grow)
    expect_model_error(folder, capsys, "model.safetensors", "wrong byte size")


def test_safetensors_header_lying_about_shapes(folder, capsys):
    def reshape(header):  # same byte count, another shape
        name = next(k for k in tensor_names(header)
                    if len(header[k]["shape"]) == 1 and header[k]["shape"][0] % 2 == 0)
        header[name]["shape"] = [2, header[name]["shape"][0] // 2]
        return header

    edit_header(folder / "model.safetensors", reshape)
    expect_model_error(folder, capsys, "wrong shape")


def test_safetensors_offsets_overlapping(folder, capsys):
    def overlap(header):
        names = tensor_names(header)
        same = next(n for n in names[1:] if header[n]["shape"] == header[names[0]]["shape"]
                    and header[n]["dtype"] == header[names[0]]["dtype"])
        header[same]["data_offsets"] = header[names[0]]["data_offsets"]
        return header

    edit_header(folder / "model.safetensors", overlap)
    expect_model_error(folder, capsys, "model.safetensors")


def test_missing_tensors(folder, capsys):
    def drop(header):
        del header[tensor_names(header)[3]]
        return header

    edit_header(folder / "model.safetensors", drop)
    expect_model_error(folder, capsys, "missing")


def test_truncated_and_garbage_weights(folder, capsys):
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    expect_model_error(folder, capsys, "truncated")
    weights.write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    expect_model_error(folder, capsys, "not a safetensors file")


# --- shot lists ----------------------------------------------------------------------------------

def shot_list(tmp_path, shots, name="shots.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"shots": shots}))
    return path


@pytest.mark.parametrize("key, value, words", [
    ("input", ["plates"], "text"), ("output", 5, "text"), ("name", 5, "text"),
    ("frames", [1001], "text or a whole number"), ("threads", 1.5, "whole number"),
    ("resolution", True, "whole number"), ("content_hash", "yes", "true or false"),
    ("device", 1, "text"), ("input", "pl\u0000ates", "NUL")])
def test_json_values_of_the_wrong_type(tmp_path, capsys, key, value, words):
    path = shot_list(tmp_path, [dict(GOOD_SHOT, **{key: value})])
    with pytest.raises(UsageError, match=words) as caught:
        load_shotlist(path)
    assert key in str(caught.value) and str(path) in str(caught.value)
    code, _out, err = run_cli(["job", "openjd", str(path), "-o", str(tmp_path / "j.yaml")],
                              capsys)
    assert code == EXIT_USAGE and "Traceback" not in err


@pytest.mark.parametrize("shots, words", [
    ([dict(GOOD_SHOT, colour="x")], "unknown key 'colour'"),
    ([{k: v for k, v in GOOD_SHOT.items() if k != "frames"}], "lacks frames"),
    ([GOOD_SHOT, dict(GOOD_SHOT, output="m/other.####.exr")], "used twice"),
    ([GOOD_SHOT, dict(GOOD_SHOT, name="SH010", output="m/o.####.exr")], "used twice")])
def test_json_shot_list_mistakes(tmp_path, shots, words):
    with pytest.raises(UsageError, match=words):
        load_shotlist(shot_list(tmp_path, shots))


@pytest.mark.parametrize("text, words", [
    ("name,input,output,frames,name\nsh010,a.####.exr,b.####.exr,1-2,x\n", "more than once"),
    ("name,input,output,frames,resolution\nsh010,a.####.exr,b.####.exr,1-2,abc\n", "resolution"),
    ("name,input,output,frames,content_hash\nsh010,a.####.exr,b.####.exr,1-2,maybe\n",
     "content_hash"),
    ("name,input,output,frames,bogus\nsh010,a.####.exr,b.####.exr,1-2,x\n", "unknown key"),
    ("name,input\nsh010,a.####.exr\n", "lacks output, frames"),
    ("name,input,output,frames\nsh010,a.####.exr,b.####.exr,1-2\n"
     "sh010,a.####.exr,c.####.exr,1-2\n", "used twice")])
def test_csv_shot_list_mistakes(tmp_path, text, words):
    path = tmp_path / "shots.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        load_shotlist(path)


def test_shot_list_that_is_not_text(tmp_path):
    path = tmp_path / "shots.json"
    path.write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_shotlist(path)
