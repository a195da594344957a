"""BiRefNet's public weights through the built-in network: the layout as published on the hub.

Random weights are saved exactly as the BiRefNet repositories publish theirs (`model.safetensors`
with the network's own top-level keys `bb.`, `squeeze_module.`, `decoder.`, a 3-channel patch
embedding, and the hub `config.json` of their transformers code), in a local folder or in a
Hugging Face cache read with HF_HUB_OFFLINE=1. Nothing downloads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vrmbg.core.cli import main
from vrmbg.core.engine.step import FrameStepper
from vrmbg.core.model import ModelConfig, init_random, load_model
from vrmbg.core.model.network import VRMBGNet

# The config.json the BiRefNet repositories publish (their transformers remote-code entry).
HUB_CONFIG = {
    "architectures": ["BiRefNet"],
    "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig",
                 "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
    "bb_pretrained": False,
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _publish(folder: Path, config: ModelConfig, *, seed: int = 0,
             dtype: torch.dtype = torch.float32, hub_config: dict | None = None) -> Path:
    """Random weights in BiRefNet's published layout (no config of ours in the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    module = VRMBGNet(config).eval()
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(hub_config or HUB_CONFIG))
    return folder


def _per_frame_tiny() -> ModelConfig:
    return ModelConfig.preset("tiny").replace(in_channels=3, name="published")


def _hub_cache(cache: Path, repo_id: str, config: ModelConfig, **kwargs) -> Path:
    """A Hugging Face cache holding one snapshot of `repo_id`, as `hf download` leaves it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    _publish(repo / "snapshots" / COMMIT, config, **kwargs)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


@pytest.fixture()
def offline(monkeypatch):
    """Downloads off, as a farm node without network sees it; both restored afterwards."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)


@pytest.mark.parametrize("repo_id, variant, resolution", [
    ("ZhengPeng7/BiRefNet", "general", 1024),
    ("ZhengPeng7/BiRefNet_HR", "HR", 2048),
    ("ZhengPeng7/BiRefNet-matting", "matting", 1024),
    ("ZhengPeng7/BiRefNet_HR-matting", "HR-matting", 2048),
])
def test_hub_repo_loads_per_frame_at_its_published_resolution(tmp_path, offline, repo_id,
                                                              variant, resolution):
    cache = _hub_cache(tmp_path / "hf", repo_id, _per_frame_tiny())
    loaded = load_model(repo_id, device="cpu", precision="fp32", cache_dir=cache)
    assert loaded.temporal is False and loaded.kind.kind == "per-frame"
    assert (loaded.family, loaded.kind.variant) == ("BiRefNet", variant)
    assert loaded.config.resolution == resolution
    assert loaded.config.in_channels == 3
    assert loaded.variant_from == "tensor shapes"
    stepper = FrameStepper(loaded)
    assert stepper.temporal is False and stepper.resolution == resolution


def test_published_weights_load_key_for_key(tmp_path):
    folder = _publish(tmp_path / "BiRefNet", _per_frame_tiny(), seed=4)
    loaded = load_model(str(folder), device="cpu", precision="fp32")
    torch.manual_seed(4)
    reference = VRMBGNet(_per_frame_tiny()).eval()
    stored = reference.state_dict()
    assert set(loaded.module.state_dict()) == set(stored)
    for name, tensor in loaded.module.state_dict().items():
        assert torch.equal(tensor.contiguous(), stored[name].contiguous()), name
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():  # same maths; channels_last on CPU only reorders sums
        assert torch.allclose(loaded.module(x)[-1], reference(x)[-1], atol=1e-5)


def test_per_frame_matte_depends_on_its_own_frame_only(tmp_path):
    folder = _publish(tmp_path / "BiRefNet", _per_frame_tiny())
    stepper = FrameStepper(load_model(str(folder), device="cpu", precision="fp32"), 64)
    rng = np.random.default_rng(0)
    frame, other = (rng.random((48, 80, 3), dtype=np.float32) for _ in range(2))
    cur, prev = stepper.prepare(frame), stepper.prepare(other)
    alone = stepper.step(cur, None, None)
    after_other = stepper.step(cur, prev, stepper.step(prev, None, None))
    assert torch.equal(alone, after_other)


def test_temporal_model_is_labelled_temporal(tmp_path):
    loaded = load_model(init_random(tmp_path / "m", "tiny"), device="cpu", precision="fp32")
    assert loaded.temporal is True and loaded.kind_label == "built-in tiny (temporal)"
    demo = load_model("demo", device="cpu", precision="fp32")
    assert demo.temporal is True and demo.family == "demo"


def test_local_folder_named_as_the_repo_gets_its_resolution(tmp_path):
    folder = _publish(tmp_path / "BiRefNet_HR", _per_frame_tiny())
    loaded = load_model(str(folder), device="cpu", precision="fp32")
    assert loaded.config.resolution == 2048 and loaded.kind.variant == "HR"
    renamed = _publish(tmp_path / "weights", _per_frame_tiny(),
                       hub_config={**HUB_CONFIG, "_name_or_path": "ZhengPeng7/BiRefNet_HR"})
    assert load_model(str(renamed), device="cpu").config.resolution == 2048


def test_unknown_birefnet_repo_is_named_from_its_config(tmp_path):
    folder = _publish(tmp_path / "my-finetune", _per_frame_tiny())
    loaded = load_model(str(folder), device="cpu", precision="fp32")
    assert loaded.family == "BiRefNet" and loaded.temporal is False
    assert loaded.config.resolution == ModelConfig.preset("full").resolution
    plain = _publish(tmp_path / "other", _per_frame_tiny(), hub_config={"foo": 1})
    assert load_model(str(plain), device="cpu").family == "BiRefNet-family"


def test_resolution_changes_the_fingerprint(tmp_path):
    general = _publish(tmp_path / "BiRefNet", _per_frame_tiny())
    high = tmp_path / "BiRefNet_HR"
    high.mkdir()
    for name in ("model.safetensors", "config.json"):
        (high / name).write_bytes((general / name).read_bytes())
    fingerprints = {load_model(str(p), device="cpu").fingerprint for p in (general, high)}
    assert len(fingerprints) == 2, "the same tensors at 1024 and 2048 give different mattes"


def test_lite_swin_t_layout_loads_and_runs(tmp_path, offline):
    lite = ModelConfig(name="lite", in_channels=3, embed_dim=96, depths=(2, 2, 6, 2),
                       num_heads=(3, 6, 12, 24), window_size=7, dec_inter_channels=8,
                       aspp_channels=8, ipt_inter_channels=8, gdt_channels=4)
    cache = _hub_cache(tmp_path / "hf", "ZhengPeng7/BiRefNet_lite", lite, dtype=torch.bfloat16)
    loaded = load_model("ZhengPeng7/BiRefNet_lite", device="cpu", precision="bf16",
                        cache_dir=cache)
    assert (loaded.kind.variant, loaded.temporal) == ("lite", False)
    assert (loaded.config.embed_dim, loaded.config.window_size) == (96, 7)
    stepper = FrameStepper(loaded, 64)
    pred = stepper.step(stepper.prepare(np.full((40, 60, 3), 0.5, np.float32)), None, None)
    assert pred.shape == (1, 1, 64, 64) and torch.isfinite(pred.float()).all()


def test_model_info_says_per_frame_or_temporal(tmp_path, capsys):
    folder = _publish(tmp_path / "BiRefNet_HR", _per_frame_tiny())
    assert main(["model", "info", str(folder), "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "per-frame" and report["family"] == "BiRefNet"
    assert report["family_variant"] == "HR" and report["native_resolution"] == 2048
    assert main(["model", "info", "demo", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "temporal" in text and "per-frame" not in text
