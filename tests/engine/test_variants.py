"""Variant detection from checkpoint shapes, strict round trips, and the full model's size."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from vrmbg.core.errors import ModelError
from vrmbg.core.model.config import ModelConfig
from vrmbg.core.model.network import VRMBGNet, build_on_meta, count_parameters
from vrmbg.core.model.variants import describe, detect_config

SMALL = dict(name="small", resolution=64, embed_dim=8, depths=(2, 1, 2, 1), num_heads=(1, 2, 2, 4),
             window_size=4, dec_inter_channels=8, aspp_channels=8, ipt_inter_channels=8,
             gdt_channels=4)

# Each variant differs from SMALL in what a real checkpoint could differ in.
VARIANTS = {
    "6ch-embed-3ch-image": dict(in_channels=6, ipt_channels=3),
    "6ch-embed-6ch-image": dict(in_channels=6, ipt_channels=6),
    "3ch-birefnet": dict(in_channels=3, ipt_channels=3),
    "no-batchnorm": dict(batch_norm=False),
    "no-multiscale": dict(multi_scale_input="none", context_features=2),
    "no-context-no-side-heads": dict(context_features=0, ms_supervision=False),
    "unsplit-image-branches": dict(ipt_split=False, aspp_kernels=(1, 3)),
    "bigger-window-mlp": dict(window_size=6, mlp_ratio=2.0, depths=(1, 1, 3, 1),
                              aspp_channels=12, dec_inter_channels=16),
}

# Shape-derived fields only (patch_order and resolution are not in a checkpoint's shapes).
SHAPE_FIELDS = ("in_channels", "ipt_channels", "embed_dim", "depths", "num_heads", "window_size",
                "patch_size", "mlp_ratio", "multi_scale_input", "context_features",
                "squeeze_blocks", "batch_norm", "dec_inter_channels", "aspp_channels",
                "aspp_kernels", "ipt_inter_channels", "ipt_split", "gdt_channels",
                "ms_supervision")


def _build(name: str) -> tuple[ModelConfig, VRMBGNet]:
    cfg = ModelConfig(**{**SMALL, **VARIANTS[name]})
    torch.manual_seed(len(name))
    return cfg, VRMBGNet(cfg).eval()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_detect_and_strict_round_trip(name, tmp_path):
    cfg, model = _build(name)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    state = load_file(str(path))

    found = detect_config(state)
    for field in SHAPE_FIELDS:
        if field == "gdt_channels" and not cfg.ms_supervision:
            continue  # no gradient-attention heads to read it from
        assert getattr(found, field) == getattr(cfg, field), field

    rebuilt = VRMBGNet(found.replace(resolution=cfg.resolution)).eval()
    rebuilt.load_state_dict(state, strict=True)
    x = torch.randn(1, cfg.in_channels, 64, 64)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x)[-1], model(x)[-1])


def test_wrapper_prefixes_are_stripped():
    cfg, model = _build("no-batchnorm")
    wrapped = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    assert detect_config(wrapped).batch_norm is False


def test_undetectable_fields_come_from_base():
    _, model = _build("3ch-birefnet")
    base = ModelConfig.preset("full").replace(patch_order="grid_major", resolution=512)
    found = detect_config(model.state_dict(), base=base)
    assert (found.patch_order, found.resolution) == ("grid_major", 512)
    assert detect_config(model.state_dict()).patch_order == "channel_major"  # documented default


def test_patch_order_changes_the_result():
    cfg, model = _build("6ch-embed-3ch-image")
    other = VRMBGNet(cfg.replace(patch_order="grid_major")).eval()
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 6, 64, 64)
    with torch.inference_mode():
        assert not torch.allclose(model(x)[-1], other(x)[-1])


def test_unsupported_checkpoints_are_refused():
    _, model = _build("3ch-birefnet")
    state = model.state_dict()
    with pytest.raises(ModelError, match="Swin backbone"):
        detect_config({k: v for k, v in state.items() if not k.startswith("bb.")})
    with pytest.raises(ModelError, match="Swin backbone"):
        detect_config({"bb.patch_embed1.proj.weight": torch.zeros(64, 3, 7, 7)})
    broken = dict(state)
    del broken["decoder.ipt_blk1.conv1.weight"]
    with pytest.raises(ModelError, match="ipt_blk1.conv1.weight"):
        detect_config(broken)
    resblk = dict(state, **{"decoder.decoder_block4.conv_resi.weight": torch.zeros(1)})
    with pytest.raises(ModelError, match="ResBlk"):
        detect_config(resblk)


def test_full_size_matches_published_parameter_count():
    """VRMBG-3.0 is published as 220.18M parameters: the 6-channel Swin-L variant must match."""
    model = build_on_meta(ModelConfig.preset("full"))
    assert abs(count_parameters(model) - 220.18e6) <= 0.005 * 220.18e6
    found = detect_config(model.state_dict())
    assert found.in_channels == 6 and found.embed_dim == 192
    assert found.depths == (2, 2, 18, 2) and found.num_heads == (6, 12, 24, 48)
    assert found.window_size == 12 and found.batch_norm
    assert describe(found).startswith("Swin-L, 6-ch input, 3-ch image branches, BatchNorm")
