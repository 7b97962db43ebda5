"""AHMSA-Net: Adaptive Hierarchical Multi-Scale Attention Network (pure torch).

Input: the cached ``ahmsa`` field, ``(B, 3, 28, 28)`` = (u, v, strain) of the five-region
composition (:func:`mepipe.stages.compose.compose_regions`; its default layout puts the regions on
this model's 7x7 patch grid).

* input scaling (``input_norm="rms"``, default): u and v divided by one scale, the RMS of the flow
  components over the training samples, strain by its own RMS; the scales are buffers set by
  :meth:`AHMSANet.fit_inputs` (the trainer calls it with each fold's training samples) and saved
  with the weights. ``input_norm="none"`` feeds the cached values as they are;
* patch embedding: 7x7 conv with stride 7 -> ``(B, dim, 4, 4)`` (16 patches), plus a learned
  positional embedding when ``pos_embed=True`` (default off: the paper has none);
* three levels of multi-scale attention blocks, (2, 2, 8) blocks, on 4x4, 2x2 and 1x1 patch grids;
* between levels, adaptive downsampling: 3x3 conv -> LayerNorm -> adaptive max pooling by a
  factor 2 (two downsamplings for three levels, paper §3.3 Eq. 2 and §4.5.2); the top level's
  single patch goes to the head;
* a multi-scale attention block is three pre-LayerNorm residual modules: channel attention
  (average- and max-pooled branches through a shared pair of 1x1 convs, summed, sigmoid),
  multi-head spatial attention (1x1 conv Q/K/V over the patches, scaled dot product, heads
  concatenated and mixed by a 1x1 conv) and a feed-forward of two 1x1 convs (§3.4);
* head: LayerNorm + linear (the "MLP layer").

No weight is built that cannot reach the output: on a level of a single patch the attention over
one key returns its value whatever Q and K are, so that level's spatial attention keeps the value
and output projections only (the same function); a downsampling conv on a 1 x 1 map (input sizes
below 28) is 1 x 1, as only the centre tap of a wider kernel would ever touch it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import LayerNorm2d, check_image, resize_to
from .registry import ModelConfig

#: ``input_norm`` choices of :class:`AHMSANet`
INPUT_NORMS = ("rms", "none")


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
    with Q, K, V from one 1x1 conv (no bias) and a 1x1 conv on the concatenated heads.

    ``tokens`` is the number of patches the module will see. With one patch the attention weight
    is softmax of a single score, 1 whatever Q and K are: the module then computes the value
    projection and the output projection only (the same result, with no Q/K weights that could
    never receive a gradient)."""

    def __init__(self, dim: int, heads: int, tokens: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.single = tokens == 1
        # no bias: a key bias adds the same q.b to every score of a query, which the softmax removes
        # (it could never receive a gradient); without Q and V biases too, as in HTNet's code
        self.qkv = nn.Conv2d(dim, dim if self.single else 3 * dim, 1, bias=False)
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.single:
            if h * w != 1:
                raise ValueError(f"this attention was built for one patch, got a {h}x{w} map")
            return self.out(self.qkv(x))
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1))
        return self.out(o.transpose(-2, -1).reshape(b, c, h, w))


class MultiScaleAttentionBlock(nn.Module):
    """Channel attention, spatial attention and feed-forward, each ``x + f(LayerNorm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, tokens: int | None = None):
        super().__init__()
        self.norm1, self.channel = LayerNorm2d(dim), ChannelAttention(dim)
        self.norm2, self.spatial = LayerNorm2d(dim), SpatialAttention(dim, heads, tokens)
        hidden = int(dim * mlp_ratio)
        self.norm3 = LayerNorm2d(dim)
        self.ffn = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.channel(self.norm1(x))
        x = x + self.spatial(self.norm2(x))
        return x + self.ffn(self.norm3(x))


class AdaptiveDownsample(nn.Module):
    """conv (channel aggregation) -> LayerNorm -> adaptive max pooling to ``ceil(H/factor)``.

    The conv is 3x3 ("same" padding); on a map of side 1 (``side``) it is 1x1, the only tap of a
    3x3 kernel that would touch the map."""

    def __init__(self, cin: int, cout: int, factor: int = 2, side: int = 2):
        super().__init__()
        self.factor = factor
        k = 3 if side >= 2 else 1
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.norm = LayerNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (max(1, -(-h // self.factor)), max(1, -(-w // self.factor)))
        return F.adaptive_max_pool2d(self.norm(self.conv(x)), size)


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


class AHMSANet(nn.Module):
    """AHMSA-Net. Call as ``model(ahmsa=x)`` with ``x (B, 3, 28, 28)``; other sizes are resized to
    ``input_size`` inside. Returns logits ``(B, num_classes)``.

    ``input_norm="rms"`` (default) divides the input by scales learned from training data with
    :meth:`fit_inputs` (call it before training; the trainer does); ``"none"`` leaves the input as
    it is. ``pos_embed=True`` adds a learned positional embedding to the patch tokens."""

    input_scale: torch.Tensor  # buffers (input_norm="rms")
    input_fitted: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        input_size: int = 28,
        patch: int = 7,
        dims=(128, 128, 128),
        depths=(2, 2, 8),
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        in_ch: int = 3,
        input_norm: str = "rms",
        pos_embed: bool = False,
        config: ModelConfig | None = None,
    ):
        super().__init__()
        if len(dims) != len(depths):
            raise ValueError("dims and depths must have the same length")
        if input_size % patch:
            raise ValueError(f"input_size {input_size} is not a multiple of patch {patch}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}")
        self.config = config
        self.input_size, self.in_ch, self.input_norm = input_size, in_ch, input_norm
        if input_norm == "rms":
            self.register_buffer("input_scale", torch.ones(in_ch))
            self.register_buffer("input_fitted", torch.tensor(False))
        self._fit_checked = False
        side = input_size // patch
        self.embed = nn.Conv2d(in_ch, dims[0], patch, stride=patch)
        self.pos = None
        if pos_embed:
            self.pos = nn.Parameter(torch.zeros(1, dims[0], side, side))
            nn.init.trunc_normal_(self.pos, std=0.02)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            self.levels.append(
                nn.Sequential(
                    *[MultiScaleAttentionBlock(dim, heads, mlp_ratio, tokens=side * side) for _ in range(depth)]
                )
            )
            if i + 1 < len(dims):  # between levels only: the top level's patch goes to the head
                self.downs.append(AdaptiveDownsample(dim, dims[i + 1], 2, side))
                side = math.ceil(side / 2)
        self.head = nn.Sequential(
            nn.Flatten(), nn.LayerNorm(dims[-1]), nn.Dropout(dropout), nn.Linear(dims[-1], num_classes)
        )

    def _groups(self) -> list[tuple[int, ...]]:
        """Channels that share one scale: (u, v) together (a flow vector keeps its direction),
        strain alone; with another channel count, each channel alone."""
        return [(0, 1), (2,)] if self.in_ch == 3 else [(c,) for c in range(self.in_ch)]

    @torch.no_grad()
    def fit_inputs(self, inputs) -> dict[str, float] | None:
        """Set the input scales from training samples: ``inputs`` is ``{"ahmsa": (N, C, H, W)}``
        (numpy or torch; other fields are ignored). Each channel group (:meth:`_groups`) gets the
        root mean square of its values over all samples and pixels (1 if that is 0). Returns the
        scales by channel name, or ``None`` with ``input_norm="none"``."""
        if self.input_norm == "none":
            return None
        if "ahmsa" not in inputs:
            raise KeyError("fit_inputs needs the training samples' 'ahmsa' field")
        a = _as_array(inputs["ahmsa"])
        if a.ndim != 4 or a.shape[1] != self.in_ch or not len(a):
            raise ValueError(f"fit_inputs needs (N, {self.in_ch}, H, W) samples, got shape {a.shape}")
        scale = np.ones(self.in_ch)
        for g in self._groups():
            rms = math.sqrt(float(np.mean(np.square(a[:, list(g)]))))
            scale[list(g)] = rms if math.isfinite(rms) and rms > 1e-12 else 1.0
        self.input_scale.copy_(torch.as_tensor(scale, dtype=self.input_scale.dtype))
        self.input_fitted.fill_(True)
        names = ("u", "v", "strain") if self.in_ch == 3 else tuple(f"channel {c}" for c in range(self.in_ch))
        return {n: float(v) for n, v in zip(names, scale)}

    def forward(self, ahmsa: torch.Tensor) -> torch.Tensor:
        x = resize_to(check_image("ahmsa", ahmsa, self.in_ch), self.input_size)
        if self.input_norm == "rms":
            if self.training and not self._fit_checked:
                self._fit_checked = True
                if not bool(self.input_fitted):
                    warnings.warn(
                        "AHMSA-Net trains on unscaled inputs: call model.fit_inputs({'ahmsa': "
                        "training samples}) first (mepipe train does), or build it with "
                        "input_norm='none'",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            x = x / self.input_scale.view(1, -1, 1, 1)
        x = self.embed(x)
        if self.pos is not None:
            x = x + self.pos
        for i, level in enumerate(self.levels):
            x = level(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        x = F.adaptive_max_pool2d(x, 1)  # one patch at the top, whatever the input size
        return self.head(x)


def build(cfg: ModelConfig, num_classes: int, **kwargs) -> AHMSANet:
    """``ahmsa-net``."""
    size = kwargs.pop("input_size", cfg.input_size)
    model = AHMSANet(num_classes, input_size=size, **kwargs)
    model.config = replace(cfg, input_size=size)
    return model
