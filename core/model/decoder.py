"""The BiRefNet-family decoder: coarse-to-fine blocks fed by lateral features and raw-image tiles.

At each scale the raw input image is cut into a grid of tiles matching that scale's feature map
and stacked on the channel axis ("patches"), passed through a small conv branch (ipt_blkN) and
concatenated to the decoder features. Gradient-attention heads (gdt_convs_*) re-weight the
features of scales 4..2 at inference too.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import BasicDecBlk, BasicLatBlk, SimpleConvs, norm2d, resize
from .config import ModelConfig

GRIDS = (32, 16, 8, 4, 1)  # tiles per side for ipt_blk5 .. ipt_blk1 (feature strides)


def image_to_patches(image: torch.Tensor, grid: int, order: str = "channel_major") -> torch.Tensor:
    """Cut (B, C, H, W) into grid x grid tiles stacked on channels -> (B, C*grid², H/g, W/g).

    order "channel_major": channel index outermost (c, tile_row, tile_col);
    "grid_major": tile index outermost (tile_row, tile_col, c).
    """
    if grid == 1:
        return image
    b, c, h, w = image.shape
    th, tw = h // grid, w // grid
    tiles = image.reshape(b, c, grid, th, grid, tw)
    # One copy straight into channels-last memory (what the following conv wants).
    if order == "channel_major":
        tiles = tiles.permute(0, 3, 5, 1, 2, 4)
    else:
        tiles = tiles.permute(0, 3, 5, 2, 4, 1)
    return tiles.reshape(b, th, tw, c * grid * grid).permute(0, 3, 1, 2)


def _gdt_convs(in_channels: int, width: int, batch_norm: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1), norm2d(width, batch_norm),
                         nn.ReLU(inplace=True))


def _head(in_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, 1, 1, 1, 0))


class Decoder(nn.Module):
    """Decoder of VRMBGNet; keys match BiRefNet's `decoder.*`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.lateral_channels
        ipt_in = [cfg.ipt_channels * (g * g if cfg.ipt_split else 1) for g in GRIDS]
        ipt_out = [ch[0] // 8, ch[0] // 8, ch[1] // 8, ch[2] // 8, ch[3] // 8]
        for level, cin, cout in zip((5, 4, 3, 2, 1), ipt_in, ipt_out):
            self.add_module(f"ipt_blk{level}", SimpleConvs(cin, cout, cfg.ipt_inter_channels))

        def dec(cin: int, cout: int) -> BasicDecBlk:
            return BasicDecBlk(cin, cout, cfg.dec_inter_channels, cfg.aspp_channels,
                               cfg.aspp_kernels, cfg.batch_norm)

        self.decoder_block4 = dec(ch[0] + ipt_out[0], ch[1])
        self.decoder_block3 = dec(ch[1] + ipt_out[1], ch[2])
        self.decoder_block2 = dec(ch[2] + ipt_out[2], ch[3])
        self.decoder_block1 = dec(ch[3] + ipt_out[3], ch[3] // 2)
        self.conv_out1 = _head(ch[3] // 2 + ipt_out[4])

        self.lateral_block4 = BasicLatBlk(ch[1], ch[1])
        self.lateral_block3 = BasicLatBlk(ch[2], ch[2])
        self.lateral_block2 = BasicLatBlk(ch[3], ch[3])

        if cfg.ms_supervision:
            for level, cin in zip((4, 3, 2), ch[1:]):
                self.add_module(f"conv_ms_spvn_{level}", nn.Conv2d(cin, 1, 1, 1, 0))
            for level, cin in zip((4, 3, 2), ch[1:]):
                self.add_module(f"gdt_convs_{level}",
                                _gdt_convs(cin, cfg.gdt_channels, cfg.batch_norm))
            for level in (4, 3, 2):
                self.add_module(f"gdt_convs_pred_{level}", _head(cfg.gdt_channels))
            for level in (4, 3, 2):
                self.add_module(f"gdt_convs_attn_{level}", _head(cfg.gdt_channels))

    # ----------------------------------------------------------------------------------------
    def _with_image(self, feat: torch.Tensor, image: torch.Tensor, level: int) -> torch.Tensor:
        """Concatenate the raw-image branch of `level` (5..2) to feat."""
        grid = image.shape[-1] // feat.shape[-1] if self.cfg.ipt_split else 1
        patches = resize(image_to_patches(image, grid, self.cfg.patch_order), feat.shape[-2:])
        branch = getattr(self, f"ipt_blk{level}")(patches.to(feat.dtype))
        return torch.cat((feat, branch), dim=1)

    def _attend(self, p: torch.Tensor, level: int) -> torch.Tensor:
        """Gradient attention: p * sigmoid(attn(gdt_convs(p))) (identity without the heads)."""
        if not self.cfg.ms_supervision:
            return p
        gate = getattr(self, f"gdt_convs_attn_{level}")(getattr(self, f"gdt_convs_{level}")(p))
        return p * gate.sigmoid()

    def _final(self, p1: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """conv_out1(cat[resize(p1), ipt_blk1(image)]) computed without the full-size concat.

        Both conv_out1 (1x1) and the bilinear resize are linear, so conv_out1's share of p1 is
        applied at p1's resolution and upsampled as one channel; its share of the image branch is
        folded into ipt_blk1.conv_out. Algebraically identical, far less memory at 1024².
        """
        head = self.conv_out1[0]
        n_p = p1.shape[1]
        w_p, w_i = head.weight[:, :n_p].contiguous(), head.weight[:, n_p:]
        low = F.conv2d(p1, w_p)
        branch = self.ipt_blk1
        inner = branch.conv1(image.to(p1.dtype))
        folded_w = torch.einsum("ob,bikl->oikl", w_i.flatten(1), branch.conv_out.weight)
        folded_b = w_i.flatten(1) @ branch.conv_out.bias + head.bias
        out = F.conv2d(inner, folded_w, folded_b, padding=1)
        del inner
        return out.add_(resize(low, image.shape[-2:])) if not torch.is_grad_enabled() \
            else out + resize(low, image.shape[-2:])

    # ----------------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor,
                x4: torch.Tensor) -> list[torch.Tensor]:
        """Eval: [logits (B, 1, H, W)]. Training: [m4, m3, m2, logits] (side outputs first)."""
        image = image[:, :self.cfg.ipt_channels]
        side = []
        p4 = self.decoder_block4(self._with_image(x4, image, 5))
        side.append(self._side(p4, 4))
        p4 = self._attend(p4, 4)
        p3 = resize(p4, x3.shape[-2:]) + self.lateral_block4(x3)
        del p4
        p3 = self.decoder_block3(self._with_image(p3, image, 4))
        side.append(self._side(p3, 3))
        p3 = self._attend(p3, 3)
        p2 = resize(p3, x2.shape[-2:]) + self.lateral_block3(x2)
        del p3
        p2 = self.decoder_block2(self._with_image(p2, image, 3))
        side.append(self._side(p2, 2))
        p2 = self._attend(p2, 2)
        p1 = resize(p2, x1.shape[-2:]) + self.lateral_block2(x1)
        del p2
        p1 = self.decoder_block1(self._with_image(p1, image, 2))
        logits = self._final(p1, image)
        if self.training and self.cfg.ms_supervision:
            return [*side, logits]
        return [logits]

    def _side(self, p: torch.Tensor, level: int) -> torch.Tensor | None:
        """Multi-scale supervision logits (training only)."""
        if self.training and self.cfg.ms_supervision:
            return getattr(self, f"conv_ms_spvn_{level}")(p)
        return None
