"""The built-in network: layout, numerics of its parts, devices and determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vrmbg.core.errors import HostError, ModelError, UsageError
from vrmbg.core.model.config import ModelConfig
from vrmbg.core.model.blocks import ASPPDeformable
from vrmbg.core.model.decoder import image_to_patches
from vrmbg.core.model.deform import DeformableConv2d, modulated_deform_conv2d
from vrmbg.core.model.devices import prepare_module, resolve_device
from vrmbg.core.model.network import VRMBGNet, build_on_meta
from vrmbg.core.model.swin import (SwinBlock, WindowAttention, shift_mask, window_partition,
                                   window_reverse)


@pytest.fixture(scope="module")
def tiny() -> VRMBGNet:
    torch.manual_seed(0)
    model = VRMBGNet(ModelConfig.preset("tiny")).eval()
    _randomise_norms(model)
    return model


def _randomise_norms(model: torch.nn.Module) -> None:
    """Give BatchNorm running stats non-trivial values so eval-mode BN is exercised."""
    gen = torch.Generator().manual_seed(1)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)


# ------------------------------------------------------------------------------------- config
def test_config_json_round_trip(tmp_path):
    cfg = ModelConfig.preset("tiny").replace(patch_order="grid_major", resolution=512)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    cfg.save(tmp_path)
    assert ModelConfig.load(tmp_path) == cfg
    assert ModelConfig.load(tmp_path / "config.json") == cfg


def test_presets_and_bad_values():
    full = ModelConfig.preset("full")
    assert (full.resolution, full.in_channels, full.embed_dim) == (1024, 6, 192)
    assert full.depths == (2, 2, 18, 2) and full.num_heads == (6, 12, 24, 48)
    assert full.lateral_channels == (3072, 1536, 768, 384)
    assert ModelConfig.preset("tiny").resolution % 32 == 0
    with pytest.raises(ModelError, match="unknown model config"):
        ModelConfig.preset("huge")
    with pytest.raises(ModelError, match="multiple of 32"):
        full.replace(resolution=1000)
    with pytest.raises(ModelError, match="patch_order"):
        full.replace(patch_order="zigzag")


def test_load_missing_config_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        ModelConfig.load(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="not a JSON object"):
        ModelConfig.load(tmp_path)


# ------------------------------------------------------------------------------------- layout
def test_full_state_dict_layout_matches_birefnet():
    sd = build_on_meta(ModelConfig.preset("full")).state_dict()
    assert {k.split(".")[0] for k in sd} == {"bb", "squeeze_module", "decoder"}
    expected = {
        "bb.patch_embed.proj.weight": (192, 6, 4, 4),
        "bb.layers.2.blocks.17.attn.relative_position_bias_table": (23 * 23, 24),
        "bb.layers.2.blocks.17.attn.relative_position_index": (144, 144),
        "bb.layers.3.blocks.1.mlp.fc1.weight": (6144, 1536),
        "bb.layers.2.downsample.reduction.weight": (1536, 3072),
        "bb.layers.2.downsample.norm.weight": (3072,),
        "bb.norm3.weight": (1536,),
        "squeeze_module.0.conv_in.weight": (64, 3072 + 1536 + 768 + 384, 3, 3),
        "squeeze_module.0.dec_att.aspp_deforms.2.atrous_conv.offset_conv.weight": (98, 64, 7, 7),
        "squeeze_module.0.dec_att.aspp_deforms.2.atrous_conv.modulator_conv.weight": (49, 64, 7, 7),
        "squeeze_module.0.dec_att.global_avg_pool.2.running_var": (256,),
        "squeeze_module.0.dec_att.conv1.weight": (64, 256 * 5, 1, 1),
        "decoder.ipt_blk5.conv1.weight": (64, 3 * 32 * 32, 3, 3),
        "decoder.ipt_blk5.conv_out.weight": (384, 64, 3, 3),
        "decoder.ipt_blk1.conv_out.weight": (48, 64, 3, 3),
        "decoder.decoder_block4.conv_in.weight": (64, 3072 + 384, 3, 3),
        "decoder.decoder_block1.conv_out.weight": (192, 64, 3, 3),
        "decoder.conv_out1.0.weight": (1, 192 + 48, 1, 1),
        "decoder.lateral_block2.conv.weight": (384, 384, 1, 1),
        "decoder.gdt_convs_4.1.running_mean": (16,),
        "decoder.gdt_convs_attn_2.0.weight": (1, 16, 1, 1),
        "decoder.conv_ms_spvn_3.weight": (1, 768, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert sum(1 for k in sd if k.endswith("relative_position_index")) == 24


def test_reset_derived_buffers_after_meta_build(tiny):
    with torch.device("meta"):
        model = VRMBGNet(ModelConfig.preset("tiny"))
    model = model.to_empty(device="cpu")
    model.reset_derived_buffers()
    key = "bb.layers.1.blocks.1.attn.relative_position_index"
    assert torch.equal(model.state_dict()[key], tiny.state_dict()[key])


def test_forward_returns_logits_last(tiny):
    x = torch.randn(2, 6, 64, 96)
    with torch.inference_mode():
        out = tiny(x)
    assert isinstance(out, list) and out[-1].shape == (2, 1, 64, 96)
    assert torch.isfinite(out[-1]).all()
    # Batch items are independent of each other (eval-mode BN uses running stats).
    with torch.inference_mode():
        single = tiny(x[1:])[-1]
    torch.testing.assert_close(single, out[-1][1:], rtol=1e-4, atol=1e-4)


def test_training_mode_adds_side_outputs():
    torch.manual_seed(0)
    model = VRMBGNet(ModelConfig.preset("tiny")).train()
    out = model(torch.randn(2, 6, 64, 64))
    assert [o.shape[-1] for o in out] == [2, 4, 8, 64]
    out[-1].mean().backward()
    assert model.bb.patch_embed.proj.weight.grad is not None


def test_bad_input_is_usage_error(tiny):
    with pytest.raises(UsageError, match=r"\(B, 6, H, W\)"):
        tiny(torch.zeros(1, 3, 64, 64))
    with pytest.raises(UsageError, match="multiple of 32"):
        tiny(torch.zeros(1, 6, 64, 70))


def test_input_channels_matter(tiny):
    """The prior frame (channels 3..5) changes the matte: the 6-channel embed is wired in."""
    x = torch.randn(1, 6, 64, 64)
    y = x.clone()
    y[:, 3:] = 0
    with torch.inference_mode():
        assert not torch.equal(tiny(x)[-1], tiny(y)[-1])


# ------------------------------------------------------------------------------- deformable
def _bilinear_reference(img, y, x):
    """torchvision's DCN sampling rule for one channel, written out per corner."""
    height, width = img.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * float(img[yy, xx])
    return total


def _deform_reference(x, offset, mask, weight, bias, stride, pad):
    b, c, _, _ = x.shape
    o, _, kh, kw = weight.shape
    out_h, out_w = offset.shape[-2:]
    out = torch.zeros(b, o, out_h, out_w, dtype=torch.float64)
    for n in range(b):
        for i in range(out_h):
            for j in range(out_w):
                for ki in range(kh):
                    for kj in range(kw):
                        k = ki * kw + kj
                        y = i * stride - pad + ki + float(offset[n, 2 * k, i, j])
                        xx = j * stride - pad + kj + float(offset[n, 2 * k + 1, i, j])
                        m = float(mask[n, k, i, j])
                        for ch in range(c):
                            v = m * _bilinear_reference(x[n, ch], y, xx)
                            out[n, :, i, j] += weight[:, ch, ki, kj].double() * v
    if bias is not None:
        out += bias.double().view(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("kernel,stride,dtype", [(3, 1, torch.float64), (1, 1, torch.float64),
                                                (3, 2, torch.float64), (3, 1, torch.float32)])
def test_deform_conv_matches_slow_reference(kernel, stride, dtype):
    gen = torch.Generator().manual_seed(kernel * 10 + stride)
    pad = kernel // 2
    x = torch.randn(2, 3, 6, 5, generator=gen, dtype=dtype)
    out_h, out_w = (6 + 2 * pad - kernel) // stride + 1, (5 + 2 * pad - kernel) // stride + 1
    taps = kernel * kernel
    offset = (torch.rand(2, 2 * taps, out_h, out_w, generator=gen, dtype=dtype) - 0.5) * 6
    offset[0, 0, 0, 0] = -40.0  # far outside the image
    mask = torch.rand(2, taps, out_h, out_w, generator=gen, dtype=dtype) * 2
    weight = torch.randn(4, 3, kernel, kernel, generator=gen, dtype=dtype)
    bias = torch.randn(4, generator=gen, dtype=dtype)
    got = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, pad)
    want = _deform_reference(x, offset, mask, weight, bias, stride, pad)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)


def test_deform_conv_gradients():
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=gen),
            (torch.rand(1, 18, 5, 5, dtype=torch.float64, generator=gen) - 0.5) * 3,
            torch.rand(1, 9, 5, 5, dtype=torch.float64, generator=gen),
            torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=gen),
            torch.randn(3, dtype=torch.float64, generator=gen)]
    args = [a.requires_grad_() for a in args]
    assert torch.autograd.gradcheck(
        lambda *a: modulated_deform_conv2d(*a, stride=1, padding=1), args, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_deform_conv_without_offsets_is_plain_conv(kernel):
    gen = torch.Generator().manual_seed(kernel)
    x = torch.randn(1, 5, 9, 11, generator=gen)
    weight = torch.randn(6, 5, kernel, kernel, generator=gen)
    offset = torch.zeros(1, 2 * kernel * kernel, 9, 11)
    mask = torch.ones(1, kernel * kernel, 9, 11)
    got = modulated_deform_conv2d(x, offset, mask, weight, None, 1, kernel // 2)
    torch.testing.assert_close(got, F.conv2d(x, weight, padding=kernel // 2),
                               rtol=1e-4, atol=1e-4)


def test_deform_conv_bf16_close_to_reference():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 7, 7, generator=gen)
    offset = (torch.rand(1, 18, 7, 7, generator=gen) - 0.5) * 4
    mask = torch.rand(1, 9, 7, 7, generator=gen) * 2
    weight = torch.randn(3, 4, 3, 3, generator=gen)
    got = modulated_deform_conv2d(x.bfloat16(), offset.bfloat16(), mask.bfloat16(),
                                  weight.bfloat16(), None, 1, 1)
    assert got.dtype == torch.bfloat16
    want = _deform_reference(x.bfloat16().float(), offset.bfloat16().float(),
                             mask.bfloat16().float(), weight.bfloat16().float(), None, 1, 1)
    torch.testing.assert_close(got.double(), want, rtol=0.05, atol=0.1)


# ------------------------------------------------------------------------------------ swin
def test_window_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, window=4, num_heads=2).double()
    x = torch.randn(2 * 4, 16, 8, dtype=torch.float64)  # batch 2, 4 windows of 4x4
    mask = shift_mask(8, 8, 4, 2, torch.device("cpu")).double()
    got = attn(x, mask)
    qkv = attn.qkv(x).view(8, 16, 3, 2, 4).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    table = attn.relative_position_bias_table
    n = 16
    bias = torch.empty(2, n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            dy = i // 4 - j // 4 + 3
            dx = i % 4 - j % 4 + 3
            bias[:, i, j] = table[dy * 7 + dx]
    logits = q @ k.transpose(-1, -2) / math.sqrt(4) + bias + mask.repeat(2, 1, 1).unsqueeze(1)
    want = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(8, 16, 8))
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("height,width", [(12, 16), (4, 12), (9, 13)])
def test_shifted_block_masks_only_edge_windows_equivalently(height, width):
    torch.manual_seed(0)
    block = SwinBlock(16, 2, 4, 2, 4.0).double().eval()
    hp, wp = -(-height // 4) * 4, -(-width // 4) * 4
    mask = shift_mask(hp, wp, 4, 2, torch.device("cpu")).double()
    windows = window_partition(torch.randn(2, hp, wp, 16, dtype=torch.float64), 4)
    with torch.inference_mode():
        got = block._shifted_attention(windows, mask, 2, hp // 4, wp // 4)
        want = block.attn(windows, mask)
    torch.testing.assert_close(got, want)


def test_shift_mask_separates_regions():
    mask = shift_mask(8, 8, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()                       # top-left window is one region
    assert torch.isinf(mask[3]).sum() > 0             # bottom-right mixes four regions
    assert (mask.diagonal(dim1=1, dim2=2) == 0).all()  # every token sees itself


def test_window_partition_round_trip():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 3)
    torch.testing.assert_close(windows[1].view(4, 4, 3), x[0, 0:4, 4:8])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


# --------------------------------------------------------------------------------- decoder
@pytest.mark.parametrize("order", ["channel_major", "grid_major"])
def test_image_to_patches_orderings(order):
    c, g, t = 2, 3, 2
    img = torch.randn(1, c, g * t, g * t)
    got = image_to_patches(img, g, order)
    assert got.shape == (1, c * g * g, t, t)
    for ch in range(c):
        for i in range(g):
            for j in range(g):
                if order == "channel_major":
                    idx = ch * g * g + i * g + j
                else:
                    idx = (i * g + j) * c + ch
                assert torch.equal(got[0, idx], img[0, ch, i * t:(i + 1) * t, j * t:(j + 1) * t])


def test_final_stage_equals_concat_then_conv(tiny):
    """The memory-saving final stage equals conv_out1(cat[resize(p1), ipt_blk1(image)])."""
    dec = tiny.decoder.double()
    try:
        p1 = torch.randn(1, dec.conv_out1[0].in_channels - dec.ipt_blk1.conv_out.out_channels,
                         16, 16, dtype=torch.float64)
        image = torch.randn(1, 3, 64, 64, dtype=torch.float64)
        with torch.inference_mode():
            got = dec._final(p1, image)
            up = F.interpolate(p1, size=(64, 64), mode="bilinear", align_corners=True)
            want = dec.conv_out1(torch.cat((up, dec.ipt_blk1(image)), 1))
        torch.testing.assert_close(got, want)
    finally:
        tiny.decoder.float()


def test_aspp_equals_concat_then_fuse():
    """The branch-by-branch fusion equals relu(bn1(conv1(cat[branches, pooled])))."""
    torch.manual_seed(0)
    aspp = ASPPDeformable(6, planes=5, kernels=(1, 3), batch_norm=True).double().eval()
    _randomise_norms(aspp)
    for mod in aspp.modules():
        if isinstance(mod, DeformableConv2d):
            torch.nn.init.normal_(mod.offset_conv.weight, std=0.3)
            torch.nn.init.normal_(mod.modulator_conv.weight, std=0.3)
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    with torch.inference_mode():
        got = aspp(x)
        branches = [aspp.aspp1(x)] + [b(x) for b in aspp.aspp_deforms]
        branches.append(aspp.global_avg_pool(x).expand(-1, -1, 9, 9))
        want = torch.relu(aspp.bn1(aspp.conv1(torch.cat(branches, 1))))
    torch.testing.assert_close(got, want)


# ---------------------------------------------------------------------------------- devices
def test_resolve_device_rules():
    dev, dtype = resolve_device("auto", "auto")
    if not torch.cuda.is_available():
        with pytest.raises(HostError, match="CUDA is not available"):
            resolve_device("cuda", "auto")
    if dev.type == "cpu":
        assert dtype == torch.bfloat16
    assert resolve_device("cpu", "fp32") == (torch.device("cpu"), torch.float32)
    assert resolve_device("cpu", "auto") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(UsageError, match="fp16 on CPU is unusably slow"):
        resolve_device("cpu", "fp16")
    with pytest.raises(UsageError, match="unknown precision"):
        resolve_device("cpu", "int8")
    with pytest.raises(UsageError, match="unknown device|unsupported device"):
        resolve_device("tpu", "auto")


def test_prepare_module_and_bf16_close_to_fp32(tiny):
    torch.manual_seed(0)
    model = VRMBGNet(ModelConfig.preset("tiny"))
    model.load_state_dict(tiny.state_dict())
    prepare_module(model, "cpu", torch.bfloat16)
    assert not model.training
    conv = model.decoder.decoder_block1.conv_in.weight
    assert conv.dtype == torch.bfloat16 and not conv.requires_grad
    assert conv.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 6, 64, 64)
    with torch.inference_mode():
        ref = tiny(x)[-1].sigmoid()
        got = model(x.bfloat16())[-1]
    assert got.dtype == torch.bfloat16
    assert (got.float().sigmoid() - ref).abs().max() < 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_forward_is_deterministic(tiny, dtype):
    torch.manual_seed(0)
    model = prepare_module(VRMBGNet(ModelConfig.preset("tiny")), "cpu", dtype)
    model.load_state_dict(tiny.state_dict())
    x = torch.randn(1, 6, 96, 96).to(dtype)
    with torch.inference_mode():
        first = model(x)[-1]
        second = model(x)[-1]
    assert torch.equal(first, second)
