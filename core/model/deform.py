"""Modulated deformable convolution (DCNv2) in pure torch, for fp32 and bf16 on any device.

torchvision's kernel has no bf16 on CPU and torchvision is not installable beside our torch, so
the sampling is written here: every kernel tap k of every output pixel p reads the input at
p * stride - padding + k * dilation + offset(p, k) with bilinear interpolation (zero outside the
image), is scaled by the modulator m(p, k), and the weighted taps are summed. The four bilinear
corners are gathered and blended in one `embedding_bag` call over a channels-last table of
pixels, so the sampled columns come out directly in the layout the final matmul wants.

Offsets follow torchvision's layout: channel 2k is the vertical (dy) and 2k + 1 the horizontal
(dx) displacement of tap k, taps in row-major order over the kernel window.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Upper bound on the elements of one block of sampled columns (pixels x taps x channels); big
# maps are processed a band of pixels at a time so memory stays flat at 1024² inference.
_COLUMN_BUDGET = 16 * 1024 * 1024


def _corner_weights(ys: torch.Tensor, xs: torch.Tensor, mask: torch.Tensor, height: int,
                    width: int, first_row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices into the (B*H*W, C) pixel table and bilinear*modulator weights, (P, K, 4).

    ys, xs, mask are float32 or float64 (P, K); first_row (P, 1) is each pixel's image start row
    in the table. Corners outside the image get weight 0 (their index is clamped to stay valid),
    which is torchvision's rule: a sample sums its in-image corners.
    """
    ys = ys.clamp(-2.0, height + 1.0)  # far outside acts like just outside; keeps ints small
    xs = xs.clamp(-2.0, width + 1.0)
    y0, x0 = ys.floor(), xs.floor()
    ly, lx = ys - y0, xs - x0
    y1, x1 = y0 + 1, x0 + 1
    cy0, cy1 = y0.clamp(0, height - 1), y1.clamp(0, height - 1)
    cx0, cx1 = x0.clamp(0, width - 1), x1.clamp(0, width - 1)
    # A corner is inside exactly when clamping left it unchanged.
    wy0 = (1 - ly) * (cy0 == y0) * mask
    wy1 = ly * (cy1 == y1) * mask
    wx0 = (1 - lx) * (cx0 == x0)
    wx1 = lx * (cx1 == x1)
    weights = torch.stack((wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1), dim=-1)
    row0 = cy0.long().mul_(width).add_(first_row)
    row1 = cy1.long().mul_(width).add_(first_row)
    ix0, ix1 = cx0.long(), cx1.long()
    index = torch.stack((row0 + ix0, row0 + ix1, row1 + ix0, row1 + ix1), dim=-1)
    return index, weights


def _blend(pixels: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of weighted table rows: out[r] = sum_j weights[r, j] * pixels[index[r, j]]."""
    if pixels.device.type in ("cpu", "cuda"):
        return F.embedding_bag(index, pixels, mode="sum", per_sample_weights=weights)
    # Devices without a weighted embedding_bag kernel (e.g. Apple MPS): gather, then blend.
    rows = pixels.index_select(0, index.reshape(-1)).view(*index.shape, pixels.shape[-1])
    return (rows * weights.unsqueeze(-1)).sum(dim=1)


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                            weight: torch.Tensor, bias: torch.Tensor | None = None,
                            stride: int | tuple[int, int] = 1,
                            padding: int | tuple[int, int] = 0,
                            dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """DCNv2 forward: deformable, modulated convolution (one offset group, groups=1).

    x (B, C, H, W); offset (B, 2K, Ho, Wo); mask (B, K, Ho, Wo); weight (O, C, kh, kw).
    Sampling positions and bilinear weights are computed in float32 (float64 for float64
    inputs); the gather-and-blend (`embedding_bag` over a channels-last pixel table) and the
    matmul run in x's dtype. Differentiable in all inputs.
    Returns (B, O, Ho, Wo) in channels-last memory. Deterministic on CPU.
    """
    stride, padding, dilation = (_pair(stride), _pair(padding), _pair(dilation))
    out_ch, in_ch, kh, kw = weight.shape
    taps = kh * kw
    b, _, height, width = x.shape
    out_h, out_w = offset.shape[-2:]
    rows = b * out_h * out_w
    dev = x.device
    pixels = x.permute(0, 2, 3, 1).reshape(b * height * width, in_ch)
    offs = offset.permute(0, 2, 3, 1).reshape(rows, taps, 2)
    mods = mask.permute(0, 2, 3, 1).reshape(rows, taps)
    exact = torch.promote_types(offset.dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
    pos = dict(device=dev, dtype=exact)
    tap_y = (torch.arange(kh, **pos) * dilation[0]).repeat_interleave(kw).view(1, taps)
    tap_x = (torch.arange(kw, **pos) * dilation[1]).repeat(kh).view(1, taps)
    w2d = weight.permute(0, 2, 3, 1).reshape(out_ch, taps * in_ch)  # (tap, channel) columns
    band = max(1, _COLUMN_BUDGET // (taps * max(in_ch, 64)))  # also bounds index/weights
    parts = []
    for start in range(0, rows, band):
        stop = min(rows, start + band)
        pix = torch.arange(start, stop, device=dev)
        img, rem = pix // (out_h * out_w), pix % (out_h * out_w)
        oy = ((rem // out_w) * stride[0] - padding[0]).to(exact).view(-1, 1)
        ox = ((rem % out_w) * stride[1] - padding[1]).to(exact).view(-1, 1)
        ys = offs[start:stop, :, 0].to(exact) + (oy + tap_y)
        xs = offs[start:stop, :, 1].to(exact) + (ox + tap_x)
        index, wts = _corner_weights(ys, xs, mods[start:stop].to(exact), height, width,
                                     (img * (height * width)).view(-1, 1))
        cols = _blend(pixels, index.view(-1, 4), wts.view(-1, 4).to(x.dtype))
        del index, wts, ys, xs
        parts.append(F.linear(cols.view(stop - start, taps * in_ch), w2d, bias))
        del cols
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.view(b, out_h, out_w, out_ch).permute(0, 3, 1, 2)


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class DeformableConv2d(nn.Module):
    """Modulated deformable conv: offsets and a 2*sigmoid modulator predicted from the input.

    Sub-module names (offset_conv, modulator_conv, regular_conv) match BiRefNet checkpoints.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 1, bias: bool = False) -> None:
        super().__init__()
        taps = kernel_size * kernel_size
        self.stride = stride
        self.padding = padding
        self.offset_conv = nn.Conv2d(in_channels, 2 * taps, kernel_size, stride, padding, bias=True)
        self.modulator_conv = nn.Conv2d(in_channels, taps, kernel_size, stride, padding, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                      bias=bias)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)
        nn.init.zeros_(self.modulator_conv.weight)
        nn.init.zeros_(self.modulator_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset_conv(x)
        modulator = torch.sigmoid(self.modulator_conv(x)) * 2.0
        return modulated_deform_conv2d(x, offset, modulator, self.regular_conv.weight,
                                       self.regular_conv.bias, self.stride, self.padding)
