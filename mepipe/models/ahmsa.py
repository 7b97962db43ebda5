"""AHMSA-Net: Adaptive Hierarchical Multi-Scale Attention Network (pure torch).

Input: the cached ``ahmsa`` field, ``(B, 3, 28, 28)`` = (u, v, strain) of the five-region
composition (:func:`mepipe.stages.compose.compose_regions`).

* patch embedding: 7x7 conv with stride 7 -> ``(B, dim, 4, 4)`` (16 patches);
* three levels of multi-scale attention blocks, (2, 2, 8) blocks, on 4x4, 2x2 and 1x1 patch grids;
* between levels and after the last one, adaptive downsampling: 3x3 conv -> LayerNorm ->
  adaptive max pooling by a factor 2 (down to one patch at the top, paper §3.3, Eq. 2);
* a multi-scale attention block is three pre-LayerNorm residual modules: channel attention
  (average- and max-pooled branches through a shared pair of 1x1 convs, summed, sigmoid),
  multi-head spatial attention (1x1 conv Q/K/V over the patches, scaled dot product, heads
  concatenated and mixed by a 1x1 conv) and a feed-forward of two 1x1 convs (§3.4);
* head: LayerNorm + linear (the "MLP layer").
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import LayerNorm2d, check_image, resize_to
from .registry import ModelConfig


class ChannelAttention(nn.Module):
    """``x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``, ``mlp`` = 1x1 conv, ReLU, 1x1 conv."""

    def __init__(self, dim: int, reduction: int = 8):
        super().__init__()
        mid = max(4, dim // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(w)


class SpatialAttention(nn.Module):
    """Multi-head scaled dot-product attention between the patches of a ``(B, C, H, W)`` map,
    with Q, K, V from one 1x1 conv and a 1x1 conv on the concatenated heads."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1))
        return self.out(o.transpose(-2, -1).reshape(b, c, h, w))


class MultiScaleAttentionBlock(nn.Module):
    """Channel attention, spatial attention and feed-forward, each ``x + f(LayerNorm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.channel = LayerNorm2d(dim), ChannelAttention(dim)
        self.norm2, self.spatial = LayerNorm2d(dim), SpatialAttention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.norm3 = LayerNorm2d(dim)
        self.ffn = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.channel(self.norm1(x))
        x = x + self.spatial(self.norm2(x))
        return x + self.ffn(self.norm3(x))


class AdaptiveDownsample(nn.Module):
    """3x3 conv (channel aggregation) -> LayerNorm -> adaptive max pooling to ``ceil(H/factor)``."""

    def __init__(self, cin: int, cout: int, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = LayerNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (max(1, -(-h // self.factor)), max(1, -(-w // self.factor)))
        return F.adaptive_max_pool2d(self.norm(self.conv(x)), size)


class AHMSANet(nn.Module):
    """AHMSA-Net. Call as ``model(ahmsa=x)`` with ``x (B, 3, 28, 28)``; other sizes are resized to
    ``input_size`` inside. Returns logits ``(B, num_classes)``."""

    def __init__(self, num_classes: int, input_size: int = 28, patch: int = 7, dims=(128, 128, 128),
                 depths=(2, 2, 8), heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 in_ch: int = 3, config: ModelConfig | None = None):
        super().__init__()
        if len(dims) != len(depths):
            raise ValueError("dims and depths must have the same length")
        if input_size % patch:
            raise ValueError(f"input_size {input_size} is not a multiple of patch {patch}")
        self.config = config
        self.input_size, self.in_ch = input_size, in_ch
        self.embed = nn.Conv2d(in_ch, dims[0], patch, stride=patch)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            self.levels.append(nn.Sequential(*[MultiScaleAttentionBlock(dim, heads, mlp_ratio) for _ in range(depth)]))
            nxt = dims[i + 1] if i + 1 < len(dims) else dim
            self.downs.append(AdaptiveDownsample(dim, nxt, 2))
        self.head = nn.Sequential(nn.Flatten(), nn.LayerNorm(dims[-1]), nn.Dropout(dropout),
                                  nn.Linear(dims[-1], num_classes))

    def forward(self, ahmsa: torch.Tensor) -> torch.Tensor:
        x = resize_to(check_image("ahmsa", ahmsa, self.in_ch), self.input_size)
        x = self.embed(x)
        for level, down in zip(self.levels, self.downs):
            x = down(level(x))
        x = F.adaptive_max_pool2d(x, 1)  # one patch at the top, whatever the input size
        return self.head(x)


def build(cfg: ModelConfig, num_classes: int, **kwargs) -> AHMSANet:
    """``ahmsa-net``."""
    size = kwargs.pop("input_size", cfg.input_size)
    model = AHMSANet(num_classes, input_size=size, **kwargs)
    model.config = replace(cfg, input_size=size)
    return model
