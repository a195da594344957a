"""VRMBGNet: the built-in BiRefNet-family network (Swin encoder, deformable-ASPP decoder).

State-dict layout matches BiRefNet-style checkpoints: `bb.*` (Swin backbone), `squeeze_module.*`
(context fusion) and `decoder.*`, so released weights load with strict=True.

    logits = VRMBGNet(config)(x)[-1]      # x (B, in_channels, R, R) -> (B, 1, R, R)
    alpha = logits.sigmoid()
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import UsageError
from .blocks import BasicDecBlk, resize
from .config import ModelConfig
from .decoder import Decoder
from .swin import SwinBackbone, WindowAttention, relative_position_index


class VRMBGNet(nn.Module):
    """Encoder (Swin, optionally run twice at full and half size) + squeeze + decoder."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else ModelConfig.preset("full")
        self.bb = SwinBackbone(cfg.in_channels, cfg.embed_dim, cfg.depths, cfg.num_heads,
                               cfg.window_size, cfg.patch_size, cfg.mlp_ratio)
        ch = cfg.lateral_channels
        if cfg.squeeze_blocks:
            self.squeeze_module = nn.Sequential(*[
                BasicDecBlk(ch[0] + (cfg.context_channels if i == 0 else 0), ch[0],
                            cfg.dec_inter_channels, cfg.aspp_channels, cfg.aspp_kernels,
                            cfg.batch_norm)
                for i in range(cfg.squeeze_blocks)])
        self.decoder = Decoder(cfg)

    def reset_derived_buffers(self) -> None:
        """Recompute buffers that follow from the config (attention position indices).

        Needed after `to_empty()` (a model materialised from the meta device) when the weights
        about to be loaded might not carry them.
        """
        for module in self.modules():
            if isinstance(module, WindowAttention):
                module.relative_position_index.copy_(relative_position_index(module.window))

    # ----------------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Refuse inputs the network cannot take, with one line saying what is expected."""
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise UsageError(f"model input must be (B, {cfg.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        if x.shape[-2] % 32 or x.shape[-1] % 32 or x.shape[-1] == 0 or x.shape[-2] == 0:
            raise UsageError(f"model input size {x.shape[-1]}x{x.shape[-2]} must be a positive "
                             "multiple of 32")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Backbone features x1..x4 (strides 4..32), multi-scale fused, context on x4."""
        cfg = self.config
        feats = self.bb(x)
        if cfg.multi_scale_input != "none":
            h, w = x.shape[-2:]
            half = self.bb(resize(x, (h // 2, w // 2)))
            for i, coarse in enumerate(half):
                coarse = resize(coarse, feats[i].shape[-2:])
                if cfg.multi_scale_input == "cat":
                    feats[i] = torch.cat((feats[i], coarse), dim=1)
                else:
                    feats[i] = feats[i] + coarse
            del half, coarse
        x1, x2, x3, x4 = feats
        if cfg.context_features:
            shallower = [x1, x2, x3][3 - cfg.context_features:]
            x4 = torch.cat([resize(f, x4.shape[-2:]) for f in shallower] + [x4], dim=1)
        return x1, x2, x3, x4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, in_channels, R, R), R a multiple of 32 -> list; [-1] = logits (B, 1, R, R)."""
        self.check_input(x)
        if self.bb.patch_embed.proj.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x1, x2, x3, x4 = self.encode(x)
        if self.config.squeeze_blocks:
            x4 = self.squeeze_module(x4)
        return self.decoder(x, x1, x2, x3, x4)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def build_on_meta(config: ModelConfig) -> VRMBGNet:
    """Build without allocating weights (shapes only), e.g. to count a full model's parameters."""
    with torch.device("meta"):
        return VRMBGNet(config)
