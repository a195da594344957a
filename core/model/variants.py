"""Read a BiRefNet-family variant from a checkpoint's tensor shapes (never from guesses).

Shapes tell: input channels of the patch embedding, channels of the raw-image decoder branches
(and whether they take tiles), Swin size (embed dim, depths from block counts, heads and window
from the relative-position tables, MLP ratio), lateral widths (multi-scale concat or not), context
width, BatchNorm present or not, decoder and ASPP widths, ASPP kernel sizes, side heads.

Not in the shapes, so taken from the defaults of ModelConfig: `patch_order` (tile ordering of
the raw-image branches; default "channel_major", the current BiRefNet ordering), `resolution`
(1024), and "add" vs "none" multi-scale fusion (both keep the backbone widths; "none" assumed).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from ..errors import ModelError
from .config import ModelConfig

_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")
_SWIN_NAMES = {
    (96, (2, 2, 6, 2)): "Swin-T", (96, (2, 2, 18, 2)): "Swin-S",
    (128, (2, 2, 18, 2)): "Swin-B", (192, (2, 2, 18, 2)): "Swin-L",
}


def strip_wrappers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop prefixes added by DataParallel / torch.compile / wrappers ("module.", "_orig_mod.")."""
    sd = dict(state_dict)
    changed = True
    while changed and sd and not any(k.startswith("bb.") for k in sd):
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def _shape(sd: Mapping[str, Any], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise ModelError(f"not a supported BiRefNet-style checkpoint: tensor {key!r} is missing")
    return tuple(int(s) for s in sd[key].shape)


def _indices(sd: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted distinct integers captured by `pattern` (one group) over the keys."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in sd for m in [rx.match(k)] if m}
    return sorted(found)


def _refuse_unsupported(sd: Mapping[str, Any]) -> None:
    if "bb.patch_embed.proj.weight" not in sd:
        other = sorted({k.split(".")[1] for k in sd if k.startswith("bb.")})[:3]
        what = f"backbone modules {other}" if other else "no `bb.` backbone tensors"
        raise ModelError(f"not a supported checkpoint: expected a Swin backbone under `bb.`, "
                         f"found {what}")
    if "decoder.decoder_block4.conv_resi.weight" in sd:
        raise ModelError("unsupported BiRefNet variant: ResBlk decoder blocks")
    if "decoder.decoder_block4.dec_att.aspp1.atrous_conv.offset_conv.weight" not in sd:
        raise ModelError("unsupported BiRefNet variant: decoder attention is not deformable ASPP")


def _backbone(sd: Mapping[str, Any]) -> dict[str, Any]:
    embed, in_ch, patch, _ = _shape(sd, "bb.patch_embed.proj.weight")
    stages = _indices(sd, r"bb\.layers\.(\d+)\.blocks\.0\.norm1\.weight$")
    if stages != [0, 1, 2, 3]:
        raise ModelError(f"unsupported backbone: expected 4 Swin stages, found {len(stages)}")
    depths, heads = [], []
    window = 0
    for i in stages:
        depths.append(len(_indices(sd, rf"bb\.layers\.{i}\.blocks\.(\d+)\.norm1\.weight$")))
        table, n_heads = _shape(sd, f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table")
        heads.append(n_heads)
        side = math.isqrt(table)
        window = (side + 1) // 2
        if side * side != table:
            raise ModelError("unsupported backbone: non-square attention windows")
    hidden = _shape(sd, "bb.layers.0.blocks.0.mlp.fc1.weight")[0]
    return dict(in_channels=in_ch, embed_dim=embed, patch_size=patch, depths=tuple(depths),
                num_heads=tuple(heads), window_size=window, mlp_ratio=hidden / embed)


def _decoder(sd: Mapping[str, Any], embed: int) -> dict[str, Any]:
    shallowest = _shape(sd, "decoder.lateral_block2.conv.weight")[0]
    multi = "cat" if shallowest == 2 * embed else "none"
    if shallowest not in (embed, 2 * embed):
        raise ModelError(f"unsupported checkpoint: lateral width {shallowest} does not match a "
                         f"backbone of width {embed}")
    lat = [c * (2 if multi == "cat" else 1) for c in (8 * embed, 4 * embed, 2 * embed, embed)]
    squeeze = _indices(sd, r"squeeze_module\.(\d+)\.conv_in\.weight$")
    context = 0
    if squeeze:
        extra = _shape(sd, "squeeze_module.0.conv_in.weight")[1] - lat[0]
        sums = {sum(lat[1:][:n]): n for n in range(4)}
        if extra not in sums:
            raise ModelError(f"unsupported checkpoint: context width {extra} matches no stage set")
        context = sums[extra]
    ipt_inter, ipt_ch = _shape(sd, "decoder.ipt_blk1.conv1.weight")[:2]
    top_in = _shape(sd, "decoder.ipt_blk5.conv1.weight")[1]
    if top_in not in (ipt_ch, ipt_ch * 1024):
        raise ModelError(f"unsupported checkpoint: ipt_blk5 takes {top_in} channels")
    blk = "decoder.decoder_block4."
    kernels = [_shape(sd, f"{blk}dec_att.aspp_deforms.{n}.atrous_conv.regular_conv.weight")[-1]
               for n in _indices(sd, rf"{re.escape(blk)}dec_att\.aspp_deforms\.(\d+)\.")]
    ms = "decoder.conv_ms_spvn_4.weight" in sd
    found = dict(
        multi_scale_input=multi, context_features=context, squeeze_blocks=len(squeeze),
        ipt_channels=ipt_ch, ipt_inter_channels=ipt_inter, ipt_split=top_in != ipt_ch,
        batch_norm=f"{blk}bn_in.weight" in sd,
        dec_inter_channels=_shape(sd, f"{blk}conv_in.weight")[0],
        aspp_channels=_shape(sd, f"{blk}dec_att.aspp1.atrous_conv.regular_conv.weight")[0],
        aspp_kernels=tuple(kernels), ms_supervision=ms,
    )
    if ms:
        found["gdt_channels"] = _shape(sd, "decoder.gdt_convs_4.0.weight")[0]
    return found


def detect_config(state_dict: Mapping[str, Any], *, base: ModelConfig | None = None) -> ModelConfig:
    """ModelConfig matching a BiRefNet-style state dict (tensors or anything with `.shape`).

    Fields not readable from shapes (patch_order, resolution) come from `base` (default: the
    "full" preset). Raises ModelError naming what is missing or unsupported.
    """
    sd = strip_wrappers(state_dict)
    _refuse_unsupported(sd)
    found = _backbone(sd)
    found.update(_decoder(sd, found["embed_dim"]))
    base = base or ModelConfig.preset("full")
    if found["ipt_channels"] > found["in_channels"]:
        raise ModelError("unsupported checkpoint: image branches take more channels than the "
                         "model input")
    name = "detected"
    return base.replace(name=name, extra={**base.extra, "detected": describe(found)}, **found)


def backbone_name(embed_dim: int, depths: tuple[int, ...]) -> str:
    """The Swin size of a backbone ("Swin-T" ... "Swin-L"), or "" when it is none of them."""
    return _SWIN_NAMES.get((int(embed_dim), tuple(int(d) for d in depths)), "")


def describe(config: ModelConfig | Mapping[str, Any]) -> str:
    """One line naming a variant, e.g. "Swin-L, 6-ch input, 3-ch image branches, BatchNorm"."""
    get = (lambda k: getattr(config, k)) if isinstance(config, ModelConfig) else config.__getitem__
    embed, depths = get("embed_dim"), tuple(get("depths"))
    swin = (backbone_name(embed, depths)
            or f"Swin(embed {embed}, depths {'-'.join(map(str, depths))})")
    parts = [swin, f"{get('in_channels')}-ch input", f"{get('ipt_channels')}-ch image branches"]
    parts.append("BatchNorm" if get("batch_norm") else "no BatchNorm")
    parts.append(f"ASPP {get('aspp_channels')} k{'/'.join(map(str, get('aspp_kernels')))}")
    if get("multi_scale_input") != "cat":
        parts.append(f"multi-scale {get('multi_scale_input')}")
    return ", ".join(parts)
