"""`vrmbg model init-random` / `vrmbg model info` / the train-demo hook, as users run them."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import types

import pytest
import torch

from vrmbg.core.cli import main
from vrmbg.core.errors import EXIT_MODEL, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE
from vrmbg.core.model import ModelConfig, init_random, load_model
from vrmbg.core.model.network import VRMBGNet

# Tensors a checkpoint stores that are buffers, not learnable parameters (BatchNorm statistics and
# the Swin relative-position lookup table).
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked",
                   ".relative_position_index")


def _info_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main(["model", "info", *args, "--json", "--device", "cpu", "--precision", "fp32"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    return json.loads(out)


def test_init_random_then_info(tmp_path, capsys):
    folder = str(tmp_path / "tiny")
    assert main(["model", "init-random", folder, "--config", "tiny", "--seed", "3"]) == EXIT_OK
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    assert folder in capsys.readouterr().out

    report = _info_json(capsys, folder)
    expected_params = sum(p.numel() for p in VRMBGNet(ModelConfig.preset("tiny")).parameters())
    assert report["variant"] == "tiny"
    assert report["parameters"] == expected_params
    assert report["stored_dtype"] == "float32"
    assert report["native_resolution"] == ModelConfig.preset("tiny").resolution
    assert report["input_channels"] == 6 and report["variant_from"] == "config.json"
    assert len(report["fingerprint"]) == 64

    # the fingerprint identifies the weights: stable for them, different for other weights
    assert _info_json(capsys, folder)["fingerprint"] == report["fingerprint"]
    other = str(tmp_path / "other")
    assert main(["model", "init-random", other, "--seed", "4"]) == EXIT_OK
    assert _info_json(capsys, other)["fingerprint"] != report["fingerprint"]


def test_info_text_and_detection_without_config(tmp_path, capsys):
    folder = tmp_path / "noconfig"
    assert main(["model", "init-random", str(folder)]) == EXIT_OK
    os.remove(folder / "config.json")
    capsys.readouterr()
    assert main(["model", "info", str(folder), "--device", "cpu", "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    for label in ("variant:", "parameters:", "stored dtype:", "native resolution:",
                  "fingerprint:"):
        assert label in out
    assert "tensor shapes" in out and "float32" in out and "cpu bfloat16" in out
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in out.splitlines() if ":" in line}
    # without config.json the variant comes from the tensor shapes, input channels included
    assert lines["variant"].endswith("from tensor shapes)")
    assert "6-ch input" in lines["variant"]

    # the parameter count, checked against the file itself (not against VRMBGNet): every
    # tensor in model.safetensors except the stored buffers
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        sizes = {k: math.prod(weights.get_slice(k).get_shape()) for k in weights.keys()}
    learnable = sum(n for k, n in sizes.items() if not k.endswith(BUFFER_SUFFIXES))
    assert 0 < learnable < sum(sizes.values())  # buffers are stored too, and not counted
    assert re.fullmatch(r"[\d,]+", lines["parameters"])
    assert int(lines["parameters"].replace(",", "")) == learnable


def test_info_uses_model_flag_when_no_source(tmp_path, capsys):
    folder = str(tmp_path / "m")
    assert main(["model", "init-random", folder]) == EXIT_OK
    assert _info_json(capsys, "--model", folder)["files"] == [
        os.path.join(folder, "model.safetensors")]


def test_init_random_refuses_to_overwrite(tmp_path, capsys):
    folder = str(tmp_path / "m")
    assert main(["model", "init-random", folder]) == EXIT_OK
    before = os.path.getmtime(os.path.join(folder, "model.safetensors"))
    assert main(["model", "init-random", folder, "--seed", "9"]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert os.path.getmtime(os.path.join(folder, "model.safetensors")) == before
    assert main(["model", "init-random", folder, "--seed", "9", "--force"]) == EXIT_OK


def test_info_refuses_pickle_with_one_line(tmp_path, capsys):
    path = tmp_path / "weights.pth"
    torch.save({"w": torch.ones(2)}, path)
    assert main(["model", "info", str(path)]) == EXIT_MODEL
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pickle" in err and "weights.pth" in err


def test_model_without_subcommand_is_usage(capsys):
    assert main(["model"]) == EXIT_USAGE
    assert "init-random" in capsys.readouterr().err


def test_bad_config_choice_is_usage(tmp_path, capsys):
    assert main(["model", "init-random", str(tmp_path / "x"), "--config", "huge"]) == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_help_has_examples():
    result = subprocess.run([sys.executable, "-m", "vrmbg.core", "model", "info", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for text in ("vrmbg model info", "--trust-remote-code", "--revision", "--json", "HF_TOKEN"):
        assert text in result.stdout


def test_train_demo_hook(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("vrmbg.core.demo.train_cli")
    fake.__doc__ = "Train the demo model (test stand-in)."
    fake.add_arguments = lambda parser: parser.add_argument("--steps", type=int, default=1)
    fake.run = lambda args: calls.append(args.steps) or 0
    monkeypatch.setitem(sys.modules, "vrmbg.core.demo.train_cli", fake)
    assert main(["model", "train-demo", "--steps", "7"]) == EXIT_OK
    assert calls == [7]


def test_train_demo_real_run_is_reproducible(tmp_path, monkeypatch, capsys):
    """The real trainer through `vrmbg model train-demo`: it trains, saves a loadable model,
    and two identical --steps runs give bit-identical weights.

    Kept fast by two knobs the CLI does not offer: a pool of 4 rendered clips instead of 48
    (rendering them is ~14 s of a ~25 s run) and a 1-shot, 3-frame final evaluation.
    """
    from vrmbg.core.demo import train, train_cli

    @dataclasses.dataclass
    class FewClips(train_cli.TrainSettings):
        pool: int = 4  # = the batch size

    monkeypatch.setattr(train_cli, "TrainSettings", FewClips)
    real_evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda model, seeds=train.HELD_OUT_SEEDS, **kw:
                        real_evaluate(model, seeds[:1], frames=3, size=(96, 64),
                                      resolution=kw.get("resolution", 192)))
    threads = torch.get_num_threads()  # the trainer sets the process-wide thread count

    def run(name: str) -> str:
        out = str(tmp_path / name)
        try:
            code = main(["model", "train-demo", "--out", out, "--steps", "2", "--resolution",
                         "64", "--seed", "1", "--threads", "1"])
        finally:
            torch.set_num_threads(threads)
        assert code == EXIT_OK
        assert capsys.readouterr().out.strip() == os.path.join(out, "MODEL_CARD.md")
        assert sorted(os.listdir(out)) == ["MODEL_CARD.md", "config.json", "model.safetensors"]
        return out

    first = load_model(run("a"), device="cpu", precision="fp32")
    assert first.config.resolution == 64 and first.config.in_channels == 6
    assert len(first.fingerprint) == 64

    # the trainer starts from the weights init_random gives for the same config and seed, so
    # a different fingerprint means the optimiser steps changed the weights
    untrained = init_random(str(tmp_path / "untrained"), config=first.config, seed=1)
    assert load_model(untrained, device="cpu", precision="fp32").fingerprint != first.fingerprint

    assert load_model(run("b"), device="cpu", precision="fp32").fingerprint == first.fingerprint


def test_train_demo_absent_is_not_offered(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vrmbg.core.demo.train_cli", None)  # import fails
    with pytest.raises(SystemExit):
        main(["model", "--help"])
    out = capsys.readouterr().out
    assert "init-random" in out and "train-demo" not in out
