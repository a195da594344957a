"""Swin Transformer (v1) backbone returning four feature maps, keyed like BiRefNet checkpoints.

Keys: patch_embed.proj/norm, layers.I.blocks.J.{norm1, attn.{relative_position_bias_table,
relative_position_index, qkv, proj}, norm2, mlp.fc1, mlp.fc2}, layers.I.downsample.{norm,
reduction} (stages 0..2), and one output LayerNorm per stage norm0..norm3.

Tokens are kept as (B, H, W, C) between blocks; attention runs window by window through
`scaled_dot_product_attention` with the relative-position bias (and the shift mask) as an
additive mask, which on CPU avoids materialising the attention matrix in fp32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + y, in place when no gradient is being recorded (saves a full-size buffer)."""
    return x.add_(y) if not torch.is_grad_enabled() else x + y


def relative_position_index(window: int) -> torch.Tensor:
    """(N, N) index into the bias table for every query/key pair of a window (N = window²)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, window², C); H and W are multiples of window."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of window_partition: (B * nW, window², C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shift_mask(hp: int, wp: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """(nW, N, N) additive mask (0 / -inf) keeping shifted windows from mixing image regions."""
    img = torch.zeros((1, hp, wp, 1), device=device)
    region = 0
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for hs in bounds:
        for ws in bounds:
            img[:, hs, ws, :] = region
            region += 1
    labels = window_partition(img, window).squeeze(-1)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill_(diff != 0, float("-inf"))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative-position bias."""

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def bias(self) -> torch.Tensor:
        """(heads, N, N) relative-position bias of this layer."""
        n = self.window * self.window
        table = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return table.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B*nW, N, C); mask (nW, N, N) or None -> (B*nW, N, C)."""
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn_mask = self.bias().to(q.dtype).unsqueeze(0)
        if mask is not None:
            n_win = mask.shape[0]
            attn_mask = attn_mask + mask.to(q.dtype).unsqueeze(1)
            if bw != n_win:
                attn_mask = attn_mask.repeat(bw // n_win, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, both residual."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int,
                 mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, H, W, C) -> (B, H, W, C); mask is used by shifted blocks only."""
        b, h, w, c = x.shape
        ws = self.window
        y = self.norm1(x)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            y = self._shifted_attention(window_partition(y, ws), mask, b, hp // ws, wp // ws)
        else:
            y = self.attn(window_partition(y, ws), None)
        y = window_reverse(y, ws, hp, wp)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_b or pad_r:
            y = y[:, :h, :w, :]
        x = _add(x, y)
        del y
        return _add(x, self.mlp(self.norm2(x)))

    def _shifted_attention(self, windows: torch.Tensor, mask: torch.Tensor | None, b: int,
                           gh: int, gw: int) -> torch.Tensor:
        """Attention of shifted windows (B*gh*gw, N, C), masking only where it matters.

        After the cyclic shift only the last row and last column of windows mix image regions;
        interior windows run with the plain position bias, which avoids building a
        (windows x heads x N x N) mask for all of them.
        """
        if mask is None or gh < 2 or gw < 2:
            return self.attn(windows, mask)
        n, c = windows.shape[-2:]
        grid = windows.view(b, gh, gw, n, c)
        masks = mask.view(gh, gw, n, n)
        edge = torch.cat((grid[:, gh - 1], grid[:, :gh - 1, gw - 1]), dim=1).reshape(-1, n, c)
        edge_mask = torch.cat((masks[gh - 1], masks[:gh - 1, gw - 1]), dim=0)
        inner = self.attn(grid[:, :gh - 1, :gw - 1].reshape(-1, n, c), None)
        edge = self.attn(edge, edge_mask).view(b, gh + gw - 1, n, c)
        out = torch.empty_like(grid)
        out[:, :gh - 1, :gw - 1] = inner.view(b, gh - 1, gw - 1, n, c)
        out[:, gh - 1] = edge[:, :gw]
        out[:, :gh - 1, gw - 1] = edge[:, gw:]
        return out.view(-1, n, c)


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat -> LayerNorm -> linear 4C -> 2C (halves H and W)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """`depth` blocks alternating plain and shifted windows, then an optional patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float,
                 downsample: bool) -> None:
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, 0 if i % 2 == 0 else self.shift, mlp_ratio)
            for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (stage output before merging, merged input of the next stage or None)."""
        _, h, w, _ = x.shape
        mask = None
        if len(self.blocks) > 1:
            hp, wp = -(-h // self.window) * self.window, -(-w // self.window) * self.window
            mask = shift_mask(hp, wp, self.window, self.shift, x.device)
        for block in self.blocks:
            x = block(x, mask)
        return x, (self.downsample(x) if self.downsample is not None else None)


class PatchEmbed(nn.Module):
    """Non-overlapping patch_size conv projection + LayerNorm (input padded to a multiple)."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/p, W/p, embed_dim)."""
        p = self.patch_size
        h, w = x.shape[-2:]
        if h % p or w % p:
            x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinBackbone(nn.Module):
    """Swin v1 encoder: four stages, each output normalised and returned as (B, C, H, W)."""

    def __init__(self, in_channels: int = 3, embed_dim: int = 192,
                 depths: tuple[int, ...] = (2, 2, 18, 2),
                 num_heads: tuple[int, ...] = (6, 12, 24, 48),
                 window_size: int = 12, patch_size: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size)
        self.layers = nn.ModuleList(
            SwinStage(embed_dim * 2 ** i, depths[i], num_heads[i], window_size, mlp_ratio,
                      downsample=i < len(depths) - 1)
            for i in range(len(depths)))
        for i in range(len(depths)):
            self.add_module(f"norm{i}", nn.LayerNorm(embed_dim * 2 ** i))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) -> [x1 (stride 4), x2 (8), x3 (16), x4 (32)], each (B, C_i, H_i, W_i).

        The outputs are NCHW views of channels-last memory (convs downstream like that layout).
        """
        tokens = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.layers):
            out, tokens = stage(tokens)
            outs.append(getattr(self, f"norm{i}")(out).permute(0, 3, 1, 2))
            del out
        return outs
