"""Convolutional building blocks of the decoder: deformable ASPP, decoder/lateral blocks.

Sub-module names follow BiRefNet checkpoints (conv_in, bn_in, dec_att, conv_out, bn_out;
aspp1, aspp_deforms.N, global_avg_pool.1/.2, conv1, bn1). When a checkpoint was trained without
BatchNorm (batch size 1), every norm is an identity and holds no tensors.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .deform import DeformableConv2d


def norm2d(channels: int, batch_norm: bool) -> nn.Module:
    """BatchNorm2d when the variant has it, else an identity (no state-dict entries)."""
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class DeformBranch(nn.Module):
    """One ASPP branch: deformable conv (no bias) -> norm -> ReLU."""

    def __init__(self, in_channels: int, planes: int, kernel_size: int, batch_norm: bool) -> None:
        super().__init__()
        self.atrous_conv = DeformableConv2d(in_channels, planes, kernel_size, 1,
                                            kernel_size // 2, bias=False)
        self.bn = norm2d(planes, batch_norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    """Atrous-spatial-pyramid pooling built from deformable branches plus a global-pool branch.

    Branches: a 1x1 deformable conv, one deformable conv per kernel size in `kernels`, and
    global average pooling -> 1x1 conv -> norm -> ReLU broadcast back; all concatenated and fused
    by a 1x1 conv -> norm -> ReLU (dropout only while training).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, planes: int = 256,
                 kernels: tuple[int, ...] = (1, 3, 7), batch_norm: bool = True) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.aspp1 = DeformBranch(in_channels, planes, 1, batch_norm)
        self.aspp_deforms = nn.ModuleList(
            DeformBranch(in_channels, planes, k, batch_norm) for k in kernels)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_channels, planes, 1, stride=1, bias=False),
            norm2d(planes, batch_norm),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(planes * (2 + len(kernels)), out_channels, 1, bias=False)
        self.bn1 = norm2d(out_channels, batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # conv1 is 1x1, so conv1(cat[b1..bn, pooled]) = sum_i conv1_i(b_i) + conv1_n+1(pooled):
        # each branch is fused as soon as it is computed (no (n+2)*planes-channel concat), and
        # the pooled branch, constant over the image, becomes a per-channel bias.
        planes = self.global_avg_pool[1].out_channels
        weights = self.conv1.weight.split(planes, dim=1)
        fused = None
        for branch, weight in zip([self.aspp1, *self.aspp_deforms], weights):
            part = F.conv2d(branch(x), weight.contiguous())
            fused = part if fused is None else _accumulate(fused, part)
        assert fused is not None
        fused = fused + F.conv2d(self.global_avg_pool(x), weights[-1].contiguous())
        return self.dropout(self.relu(self.bn1(fused)))


def _accumulate(total: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """total + part, in place when no gradient is recorded."""
    return total + part if torch.is_grad_enabled() else total.add_(part)


class BasicDecBlk(nn.Module):
    """conv 3x3 -> norm -> ReLU -> deformable ASPP -> conv 3x3 -> norm (no final activation)."""

    def __init__(self, in_channels: int, out_channels: int, inter_channels: int = 64,
                 aspp_planes: int = 256, aspp_kernels: tuple[int, ...] = (1, 3, 7),
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, inter_channels, 3, 1, padding=1)
        self.relu_in = nn.ReLU(inplace=True)
        self.dec_att = ASPPDeformable(inter_channels, planes=aspp_planes, kernels=aspp_kernels,
                                      batch_norm=batch_norm)
        self.conv_out = nn.Conv2d(inter_channels, out_channels, 3, 1, padding=1)
        self.bn_in = norm2d(inter_channels, batch_norm)
        self.bn_out = norm2d(out_channels, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_in(self.bn_in(self.conv_in(x)))
        x = self.dec_att(x)
        return self.bn_out(self.conv_out(x))


class BasicLatBlk(nn.Module):
    """Lateral connection: a 1x1 conv (key `conv`)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SimpleConvs(nn.Module):
    """Raw-image branch: two 3x3 convs with no activation between (keys conv1, conv_out)."""

    def __init__(self, in_channels: int, out_channels: int, inter_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inter_channels, 3, 1, 1)
        self.conv_out = nn.Conv2d(inter_channels, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv1(x))


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize with align_corners=True (the family's convention); no-op at equal size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
