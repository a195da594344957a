"""Loading weights: local folders and files, the hub (mocked, no network), refusals, remote code."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
import torch
from huggingface_hub import errors as hub_errors
from safetensors.torch import load_file, save_file

from vrmbg.core.errors import EXIT_MODEL, ModelError, OutputError
from vrmbg.core.model import LoadedModel, ModelConfig, init_random, load_model, save_model
from vrmbg.core.model import loader as loader_mod
from vrmbg.core.model.devices import prepare_module
from vrmbg.core.model.fingerprint import file_digest
from vrmbg.core.model.network import VRMBGNet

REPO = "briaai/VRMBG-3.0"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random-weight model folder written once for the module (read-only in tests)."""
    return Path(init_random(tmp_path_factory.mktemp("tiny") / "model", "tiny", seed=0))


def _copy_model(src: Path, dst: Path, with_config: bool = True) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    if with_config:
        (dst / "config.json").write_text((src / "config.json").read_text())
    return dst


def _probe(module: torch.nn.Module, seed: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 6, 64, 64, generator=gen)
    with torch.inference_mode():
        return module(x.to(next(module.parameters()).dtype))[-1].float()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------------------------
# Local folders and files
# --------------------------------------------------------------------------------------------
def test_round_trip_is_strict_and_exact(tiny_dir):
    loaded = load_model(str(tiny_dir), device="cpu", precision="fp32")
    assert isinstance(loaded, LoadedModel)
    assert loaded.variant_from == "config.json" and loaded.config.name == "tiny"
    stored = load_file(str(tiny_dir / "model.safetensors"))
    current = loaded.module.state_dict()
    assert set(stored) == set(current)
    for name, tensor in stored.items():
        assert torch.equal(current[name].cpu().contiguous(), tensor), name
    assert loaded.stored_dtype == "float32"
    assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"
    assert not loaded.module.training
    assert all(not p.requires_grad for p in loaded.module.parameters())


def test_save_model_is_atomic_and_complete(tmp_path):
    config = ModelConfig.preset("tiny")
    torch.manual_seed(1)
    module = VRMBGNet(config)
    folder = tmp_path / "saved"
    save_model(module, config, folder)
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["embed_dim"] == config.embed_dim
    loaded = load_model(str(folder), device="cpu", precision="fp32")
    # same memory format as the loaded module, so the comparison can be exact
    prepare_module(module, "cpu", torch.float32)
    assert torch.equal(_probe(loaded.module), _probe(module))


def test_save_model_leaves_nothing_on_error(tmp_path, monkeypatch):
    import safetensors.torch as st

    def broken(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st, "save_file", broken)
    folder = tmp_path / "new"
    config = ModelConfig.preset("tiny")
    with pytest.raises(OutputError, match="no space left on the device"):
        save_model(VRMBGNet(config), config, folder)
    assert not folder.exists()


def test_init_random_is_reproducible(tmp_path, tiny_dir):
    again = init_random(tmp_path / "again", "tiny", seed=0)
    other = init_random(tmp_path / "other", "tiny", seed=1)
    fp = {name: load_model(str(p), device="cpu", precision="fp32").fingerprint
          for name, p in (("a", tiny_dir), ("b", again), ("c", other))}
    assert fp["a"] == fp["b"] != fp["c"]
    assert len(fp["a"]) == 64 and int(fp["a"], 16) >= 0


def test_folder_without_config_is_detected_from_shapes(tiny_dir, tmp_path):
    folder = _copy_model(tiny_dir, tmp_path / "noconfig", with_config=False)
    with_cfg = load_model(str(tiny_dir), device="cpu", precision="fp32")
    detected = load_model(str(folder), device="cpu", precision="fp32")
    assert detected.variant_from == "tensor shapes"
    for field in ("embed_dim", "depths", "num_heads", "window_size", "in_channels",
                  "ipt_channels", "dec_inter_channels", "aspp_channels"):
        assert getattr(detected.config, field) == getattr(with_cfg.config, field), field
    assert torch.equal(_probe(detected.module), _probe(with_cfg.module))


def test_foreign_config_json_falls_back_to_shapes(tiny_dir, tmp_path):
    folder = _copy_model(tiny_dir, tmp_path / "foreign", with_config=False)
    (folder / "config.json").write_text(json.dumps({"model_type": "vrmbg3",
                                                    "architectures": ["VRMBG3"]}))
    loaded = load_model(str(folder), device="cpu", precision="fp32")
    assert loaded.variant_from == "tensor shapes"


def test_single_safetensors_file(tiny_dir, tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes((tiny_dir / "model.safetensors").read_bytes())
    loaded = load_model(str(path), device="cpu", precision="fp32")
    assert loaded.files == (str(path),)
    assert torch.equal(_probe(loaded.module),
                       _probe(load_model(str(tiny_dir), device="cpu", precision="fp32").module))


def test_bf16_precision_casts_the_module(tiny_dir):
    loaded = load_model(str(tiny_dir), device="cpu", precision="bf16")
    assert loaded.dtype == torch.bfloat16
    assert {p.dtype for p in loaded.module.parameters()} == {torch.bfloat16}
    assert loaded.stored_dtype == "float32"  # what is on disk, not what runs


def test_fingerprint_ignores_layout_but_not_values(tmp_path):
    a = {"x.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
         "y.bias": torch.ones(5)}
    save_file(a, tmp_path / "a.safetensors", metadata={"note": "one"})
    save_file(dict(reversed(list(a.items()))), tmp_path / "b.safetensors",
              metadata={"note": "two"})
    changed = dict(a)
    changed["y.bias"] = changed["y.bias"].clone()
    changed["y.bias"][2] = 1.0000001
    save_file(changed, tmp_path / "c.safetensors")
    digests = [file_digest(tmp_path / f"{n}.safetensors") for n in "abc"]
    assert digests[0] == digests[1] != digests[2]


def test_strict_mismatch_names_file_and_keys(tiny_dir, tmp_path):
    folder = _copy_model(tiny_dir, tmp_path / "broken")
    state = load_file(str(folder / "model.safetensors"))
    dropped = sorted(k for k in state if k.startswith("decoder."))[0]
    del state[dropped]
    state["decoder.extra_head.weight"] = torch.zeros(2)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ModelError) as info:
        load_model(str(folder), device="cpu", precision="fp32")
    text = _one_line(info.value)
    assert "model.safetensors" in text and dropped in text
    assert "decoder.extra_head.weight" in text
    assert info.value.exit_code == EXIT_MODEL


def test_wrong_shape_is_reported(tiny_dir, tmp_path):
    folder = _copy_model(tiny_dir, tmp_path / "shape")
    state = load_file(str(folder / "model.safetensors"))
    key = "decoder.ipt_blk1.conv1.bias"
    state[key] = torch.zeros(state[key].shape[0] + 1)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ModelError, match="wrong shape") as info:
        load_model(str(folder), device="cpu", precision="fp32")
    assert key in str(info.value)


class _Trap:
    """Unpickling this creates a marker file: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def no_torch_load(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", forbidden)


def _pickle_checkpoint(path: Path) -> Path:
    torch.save({"weights": torch.ones(3), "trap": _Trap(path.parent / "UNPICKLED")}, path)
    return path


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model.pth", "model.ckpt"])
def test_pickle_file_is_refused_without_loading(tmp_path, name, no_torch_load):
    path = _pickle_checkpoint(tmp_path / name)
    with pytest.raises(ModelError) as info:
        load_model(str(path), device="cpu", precision="fp32")
    text = _one_line(info.value)
    assert "pickle" in text and "safetensors" in text and name in text
    assert not (tmp_path / "UNPICKLED").exists()


def test_folder_with_only_pickle_weights_is_refused(tmp_path, no_torch_load):
    _pickle_checkpoint(tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="pytorch_model.bin.*refused"):
        load_model(str(tmp_path), device="cpu", precision="fp32")
    assert not (tmp_path / "UNPICKLED").exists()


def test_pickle_renamed_to_safetensors_is_refused(tmp_path, no_torch_load):
    real = _pickle_checkpoint(tmp_path / "model.bin")
    fake = tmp_path / "model.safetensors"
    real.rename(fake)
    with pytest.raises(ModelError, match="not a safetensors file.*pickle"):
        load_model(str(tmp_path), device="cpu", precision="fp32")
    assert not (tmp_path / "UNPICKLED").exists()


def test_truncated_safetensors_is_refused(tiny_dir, tmp_path):
    data = (tiny_dir / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_model(str(tmp_path), device="cpu", precision="fp32")


def test_missing_local_path_and_demo(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no such model file or folder"):
        load_model(str(tmp_path / "nope.safetensors"), device="cpu")
    monkeypatch.setattr(loader_mod, "DEMO_FOLDER", tmp_path / "missing-demo")
    with pytest.raises(ModelError, match="demo model is missing"):
        load_model("demo", device="cpu")


def test_demo_source_uses_bundled_folder(tiny_dir, monkeypatch):
    monkeypatch.setattr(loader_mod, "DEMO_FOLDER", tiny_dir)
    loaded = load_model("demo", device="cpu", precision="fp32")
    assert loaded.source == "demo" and loaded.config.name == "tiny"


def test_several_unnamed_safetensors_are_ambiguous(tiny_dir, tmp_path):
    for name in ("a.safetensors", "b.safetensors"):
        (tmp_path / name).write_bytes((tiny_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="several .safetensors"):
        load_model(str(tmp_path), device="cpu")


# --------------------------------------------------------------------------------------------
# Hugging Face hub (snapshot_download mocked: no network)
# --------------------------------------------------------------------------------------------
def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/{REPO}"))


def _raise(exc: BaseException):
    def fake(*args, **kwargs):
        raise exc
    return fake


HUB_CASES = [
    (hub_errors.GatedRepoError("gated", response=_response(401)),
     ["gated", "accept", "licence", "hf auth login", "HF_TOKEN", "--model"]),
    (hub_errors.RepositoryNotFoundError("404", response=_response(404)),
     ["not found", "hf auth login", "HF_TOKEN", "--model"]),
    (hub_errors.RevisionNotFoundError("rev", response=_response(404)),
     ["revision", "v9", "--revision"]),
    (hub_errors.HfHubHTTPError("denied", response=_response(403)),
     ["403", "hf auth login", "HF_TOKEN", "licence"]),
    (hub_errors.HfHubHTTPError("unauthorised", response=_response(401)),
     ["401", "HF_TOKEN"]),
    (hub_errors.HfHubHTTPError("boom", response=_response(500)),
     ["500", "--model"]),
    (hub_errors.LocalEntryNotFoundError("connection failed, no cache"),
     ["cannot reach huggingface.co", "--model"]),
    (httpx2.ConnectError("connection refused",
                         request=httpx2.Request("GET", "https://huggingface.co")),
     ["cannot reach huggingface.co", "HF_HUB_OFFLINE", "--model"]),
]


@pytest.mark.parametrize("exc,needles", HUB_CASES, ids=lambda v: type(v).__name__
                         if isinstance(v, BaseException) else "")
def test_hub_errors_say_what_to_do(exc, needles, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(exc))
    with pytest.raises(ModelError) as info:
        load_model(REPO, device="cpu", revision="v9")
    text = _one_line(info.value)
    for needle in needles:
        assert needle in text, (needle, text)
    assert info.value.exit_code == EXIT_MODEL


def test_offline_without_cache_is_a_clear_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used in offline mode")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        load_model(REPO, device="cpu", cache_dir=str(tmp_path / "empty-cache"))
    text = _one_line(info.value)
    assert "HF_HUB_OFFLINE" in text and "cache" in text and "--model" in text


def test_hub_download_passes_revision_token_cache_and_patterns(tiny_dir, tmp_path, monkeypatch):
    calls = []

    def fake(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tiny_dir)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    loaded = load_model(REPO, device="cpu", precision="fp32", revision="abc123",
                        cache_dir=str(tmp_path))
    repo_id, kwargs = calls[0]
    assert repo_id == REPO and kwargs["revision"] == "abc123"
    assert kwargs["token"] is None  # huggingface_hub finds HF_TOKEN / the cached login itself
    assert kwargs["cache_dir"] == str(tmp_path) and kwargs["local_files_only"] is False
    assert not any(p.endswith(".py") for p in kwargs["allow_patterns"])
    patterns = kwargs["allow_patterns"]
    assert not any(p.endswith((".bin", ".pt", ".pth")) or p == "*" for p in patterns)
    assert loaded.source == f"{REPO}@abc123"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_model(REPO, device="cpu", precision="fp32", token="hf_x")
    assert calls[1][1]["local_files_only"] is True and calls[1][1]["token"] == "hf_x"


def test_hub_repo_with_only_pickle_weights(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(tmp_path))
    with pytest.raises(ModelError, match="no model.safetensors in the repository"):
        load_model(REPO, device="cpu")


# --------------------------------------------------------------------------------------------
# The repository's own model code (opt-in)
# --------------------------------------------------------------------------------------------
REMOTE_CONFIG = '''
class RemoteConfig:
    def __init__(self, width=4, in_channels=6, **kwargs):
        self.width = width
        self.in_channels = in_channels
'''

REMOTE_MODEL = '''
import torch
from torch import nn
from .remote_config import RemoteConfig


class RemoteNet(nn.Module):
    def __init__(self, config: RemoteConfig):
        super().__init__()
        self.body = nn.Conv2d(config.in_channels, config.width, 3, padding=1)
        self.head = nn.Conv2d(config.width, 1, 1)

    def forward(self, x):
        return [self.head(torch.relu(self.body(x)))]
'''


def _remote_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "remote_config.py").write_text(REMOTE_CONFIG)
    (folder / "model.py").write_text(REMOTE_MODEL)
    (folder / "config.json").write_text(json.dumps({
        "width": 5, "in_channels": 6, "model_type": "remote",
        "auto_map": {"AutoConfig": "remote_config.RemoteConfig",
                     "AutoModelForImageSegmentation": "model.RemoteNet"}}))
    gen = torch.Generator().manual_seed(0)
    save_file({"body.weight": torch.randn(5, 6, 3, 3, generator=gen),
               "body.bias": torch.randn(5, generator=gen),
               "head.weight": torch.randn(1, 5, 1, 1, generator=gen),
               "head.bias": torch.randn(1, generator=gen)}, folder / "model.safetensors")
    return folder


def test_remote_code_needs_the_flag(tmp_path):
    folder = _remote_folder(tmp_path)
    with pytest.raises(ModelError) as info:
        load_model(str(folder), device="cpu", precision="fp32")
    assert "--trust-remote-code" in _one_line(info.value)


def test_remote_code_is_used_with_the_flag(tmp_path):
    folder = _remote_folder(tmp_path)
    loaded = load_model(str(folder), device="cpu", precision="fp32", trust_remote_code=True)
    assert type(loaded.module).__name__ == "RemoteNet" and loaded.remote_code
    assert loaded.module.body.out_channels == 5  # built from config.json through its config class
    x = torch.rand(1, 6, 32, 32)
    stored = load_file(str(folder / "model.safetensors"))
    expected = torch.nn.functional.conv2d(
        torch.relu(torch.nn.functional.conv2d(x, stored["body.weight"], stored["body.bias"],
                                              padding=1)),
        stored["head.weight"], stored["head.bias"])
    with torch.inference_mode():
        got = loaded.module(x.contiguous(memory_format=torch.channels_last))[-1]
    assert torch.allclose(got, expected, atol=1e-5)
    # the code is part of the identity: editing model.py changes the fingerprint
    first = loaded.fingerprint
    (folder / "model.py").write_text(REMOTE_MODEL + "\n# edited\n")
    again = load_model(str(folder), device="cpu", precision="fp32", trust_remote_code=True)
    assert again.fingerprint != first


def test_remote_code_flag_fetches_python_files(tmp_path, monkeypatch):
    folder = _remote_folder(tmp_path)
    patterns = []

    def fake(repo_id, **kwargs):
        patterns.extend(kwargs["allow_patterns"])
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    load_model(REPO, device="cpu", precision="fp32", trust_remote_code=True)
    assert "*.py" in patterns


def test_remote_code_missing_dependency_is_named(tmp_path):
    folder = _remote_folder(tmp_path)
    (folder / "model.py").write_text("import vrmbg_no_such_package\n" + REMOTE_MODEL)
    with pytest.raises(ModelError, match="vrmbg_no_such_package"):
        load_model(str(folder), device="cpu", precision="fp32", trust_remote_code=True)


def test_trust_flag_without_code(tiny_dir):
    with pytest.raises(ModelError, match="no model.py"):
        load_model(str(tiny_dir), device="cpu", trust_remote_code=True)


def test_wrapper_prefixes_are_stripped(tiny_dir, tmp_path):
    state = load_file(str(tiny_dir / "model.safetensors"))
    save_file({f"module.{k}": v for k, v in state.items()}, tmp_path / "model.safetensors")
    wrapped = load_model(str(tmp_path), device="cpu", precision="fp32")
    plain = load_model(str(tiny_dir), device="cpu", precision="fp32")
    assert wrapped.variant_from == "tensor shapes"
    assert torch.equal(_probe(wrapped.module), _probe(plain.module))


def test_unsupported_checkpoint_suggests_remote_code(tmp_path):
    save_file({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(
        {"auto_map": {"AutoModelForImageSegmentation": "model.Net"}}))
    with pytest.raises(ModelError) as info:
        load_model(str(tmp_path), device="cpu")
    text = _one_line(info.value)
    assert "--trust-remote-code" in text and "model.safetensors" in text
