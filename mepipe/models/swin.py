"""A compact Swin Transformer encoder (the FaceSleuth Facial Position Focalizer backbone).

Window multi-head self-attention with a learned relative position bias, shifted windows on every
second block (cyclic shift + attention mask), pre-norm MLP blocks, and patch merging (2x2
neighbours concatenated, LayerNorm, linear 4C -> 2C) between stages. Pure torch.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * nW, ws*ws, C)``."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(win: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """``(B * nW, ws*ws, C)`` -> ``(B, H, W, C)``."""
    c = win.shape[-1]
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``ws x ws`` windows with a relative position bias table
    of ``(2ws-1)^2`` entries per head."""

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.ws, self.heads = ws, heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # (2, N, N), each in [0, 2ws-2]
        self.register_buffer("bias_index", rel[0] * (2 * ws - 1) + rel[1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (bw, heads, n, n)
        bias = self.bias_table[self.bias_index.reshape(-1)].view(n, n, self.heads).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(bw, self.heads, n, n)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """Pre-norm window attention (shifted by ``shift`` when > 0) + pre-norm MLP, both residual."""

    def __init__(self, dim: int, resolution: int, heads: int, ws: int, shift: int, mlp_ratio: float = 4.0):
        super().__init__()
        if resolution <= ws:  # one window covers the map: no shift (as in Swin)
            ws, shift = resolution, 0
        if resolution % ws:
            raise ValueError(f"feature size {resolution} is not a multiple of window {ws}")
        self.res, self.ws, self.shift = resolution, ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.register_buffer("mask", self._mask() if shift else None, persistent=False)

    def _mask(self) -> torch.Tensor:
        r, ws, s = self.res, self.ws, self.shift
        img = torch.zeros(1, r, r, 1)
        cnt = 0
        for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                img[:, hs, wsl, :] = cnt
                cnt += 1
        win = window_partition(img, ws).squeeze(-1)  # (nW, N)
        diff = win[:, None, :] - win[:, :, None]
        return diff.ne(0).float() * -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, L, C)
        b, n, c = x.shape
        r = self.res
        h = self.norm1(x).view(b, r, r, c)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = self.attn(window_partition(h, self.ws), self.mask)
        h = window_reverse(win, self.ws, r, r)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Halve the resolution: concatenate each 2x2 neighbourhood (4C), LayerNorm, linear to 2C."""

    def __init__(self, dim: int, resolution: int):
        super().__init__()
        self.res = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r = self.res
        x = x.view(b, r, r, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduce(self.norm(x.view(b, -1, 4 * c)))


class SwinEncoder(nn.Module):
    """Patch embedding (``patch x patch`` conv, LayerNorm) then stages of Swin blocks with patch
    merging between stages. Input ``(B, in_ch, S, S)``; output ``(B, C_last, S_last, S_last)`` with
    ``C_last = embed_dim * 2**(len(depths)-1)`` and ``S_last = S / patch / 2**(len(depths)-1)``."""

    def __init__(
        self,
        img_size: int = 128,
        patch: int = 4,
        in_ch: int = 3,
        embed_dim: int = 32,
        depths=(2, 2, 6),
        heads=(2, 4, 8),
        window: int = 8,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        if img_size % patch:
            raise ValueError(f"image size {img_size} is not a multiple of patch size {patch}")
        if len(depths) != len(heads):
            raise ValueError("depths and heads must have the same length")
        self.embed = nn.Conv2d(in_ch, embed_dim, patch, stride=patch)
        self.embed_norm = nn.LayerNorm(embed_dim)
        res, dim = img_size // patch, embed_dim
        self.stages = nn.ModuleList()
        for i, (depth, nh) in enumerate(zip(depths, heads)):
            blocks = [
                SwinBlock(dim, res, nh, window, 0 if j % 2 == 0 else window // 2, mlp_ratio) for j in range(depth)
            ]
            stage = nn.Sequential(*blocks)
            if i < len(depths) - 1:
                if res % 2:
                    raise ValueError(f"feature size {res} cannot be halved by patch merging")
                stage.append(PatchMerging(dim, res))
                res, dim = res // 2, dim * 2
            self.stages.append(stage)
        self.norm = nn.LayerNorm(dim)
        self.out_dim, self.out_res = dim, res

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        b = x.shape[0]
        x = self.embed_norm(x.flatten(2).transpose(1, 2))
        for stage in self.stages:
            x = stage(x)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(b, self.out_dim, self.out_res, self.out_res)
