"""Continuously Vertical Attention (CVA) and Single-Orientation Attention (SOA).

Geometry and angle convention (see docs/models.md):

* A feature map ``(B, C, H, W)`` is read in image coordinates: ``x`` to the right (columns),
  ``y`` downwards (rows), origin at the map centre, one unit per pixel.
* SOA's direction is ``d = (cos θ, sin θ)`` in ``(x, y)``. Orientation-aware pooling (OAP, paper
  Eq. 5) averages the map along the lines orthogonal to ``d``; the result is a profile indexed by
  the position ``t = p · d`` along ``d``, sampled at ``t = -(H-1)/2, ..., (H-1)/2`` (H samples).
* θ = 90° gives ``d = (0, 1)``: the lines are the rows, the profile is the per-row mean over the
  width, indexed by ``y`` — exactly CVA's pooling (adaptive average pooling to ``(H, 1)``), and the
  attention vector re-weights every column of the map (paper §3.1: "every column of the
  motion-pattern feature maps reweighted by the vertical attention maps"). θ = 0° pools along the
  columns and gives horizontal attention, as the paper states for config D. Because ``y`` points
  down, a positive θ turns ``d`` clockwise on screen; θ and θ + 180° are the same axis.

The oriented pooling is differentiable in θ: the sampling grid is rotated and read with bilinear
``F.grid_sample``, whose gradient with respect to the grid flows into θ. The paper mentions a
straight-through estimator over ``index_select``; the bilinear construction gives the exact
gradient of the interpolated operator instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ResidualBlock


def _coords(n: int, device, dtype) -> torch.Tensor:
    """Centred pixel coordinates ``-(n-1)/2 .. (n-1)/2``."""
    return torch.arange(n, device=device, dtype=dtype) - (n - 1) / 2.0


def _to_grid(coord: torch.Tensor, n: int) -> torch.Tensor:
    """Centred pixel coordinate -> grid_sample coordinate (align_corners=False)."""
    return (2.0 * (coord + (n - 1) / 2.0) + 1.0) / n - 1.0


def _n_lines_samples(h: int, w: int) -> int:
    """Samples per pooling line: enough to cross the map diagonally, same parity as ``w`` (so that
    at θ = 90° the samples fall exactly on pixel centres)."""
    diag = math.sqrt(h * h + w * w)
    return w + 2 * int(math.ceil((diag - w) / 2.0))


def oriented_pool(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Average ``x (B, C, H, W)`` along the lines orthogonal to ``d = (cos θ, sin θ)``.

    Returns ``(B, C, H, 1)``: entry ``k`` is the mean of ``x`` over the line at ``t = k - (H-1)/2``
    along ``d``. Samples are bilinear; the parts of a line outside the map are left out of the mean
    (each sample weighted by how much of it lies inside). Differentiable in ``x`` and ``theta``.
    """
    b, c, h, w = x.shape
    dev, dt = x.device, x.dtype
    theta = theta.to(dt)
    n_s = _n_lines_samples(h, w)
    t = _coords(h, dev, dt).view(h, 1)
    s = _coords(n_s, dev, dt).view(1, n_s)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # p = t * d + s * d_perp, d = (cos, sin), d_perp = (-sin, cos)
    px = t * cos - s * sin
    py = t * sin + s * cos
    grid = torch.stack([_to_grid(px, w), _to_grid(py, h)], dim=-1)  # (H, n_s, 2)
    grid = grid.unsqueeze(0).expand(b, h, n_s, 2)
    ones = torch.ones(b, 1, h, w, device=dev, dtype=dt)
    both = torch.cat([x, ones], dim=1)
    sampled = F.grid_sample(both, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    num = sampled[:, :c].sum(dim=3, keepdim=True)
    den = sampled[:, c:].sum(dim=3, keepdim=True).clamp_min(1e-6)
    return num / den


def oriented_unpool(a: torch.Tensor, theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Map a profile ``a (B, C, L, 1)`` back onto an ``h x w`` map (paper Eq. 7).

    Pixel ``p`` receives ``a`` at ``t = p · d`` (linear interpolation between profile samples;
    positions beyond the ends take the end value). At θ = 90° this is broadcasting over columns.
    """
    b, c, n, _ = a.shape
    dev, dt = a.device, a.dtype
    theta = theta.to(dt)
    xs = _coords(w, dev, dt).view(1, w)
    ys = _coords(h, dev, dt).view(h, 1)
    t = xs * torch.cos(theta) + ys * torch.sin(theta)  # (h, w)
    gx = _to_grid(t, n)
    grid = torch.stack([gx, torch.zeros_like(gx)], dim=-1).unsqueeze(0).expand(b, h, w, 2)
    prof = a.reshape(b, c, 1, n)
    return F.grid_sample(prof, grid, mode="bilinear", padding_mode="border", align_corners=False)


def reduced_channels(c: int) -> int:
    """Bottleneck width of CVA/SOA: the paper's reduction ``max(8, C/32)``."""
    return max(8, c // 32)


class ProfileAttention(nn.Module):
    """The attention vector of one CVA/SOA layer from a pooled profile ``(B, C, L, 1)``:
    1x1 conv reduce (C -> max(8, C/32)), BatchNorm, ReLU, 1x1 conv restore, sigmoid (Eq. 2 / 6)."""

    def __init__(self, channels: int):
        super().__init__()
        mid = reduced_channels(channels)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.norm = nn.BatchNorm2d(mid)
        self.restore = nn.Conv2d(mid, channels, 1)

    def forward(self, profile: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.restore(F.relu(self.norm(self.reduce(profile)))))


def chain_attention(a: torch.Tensor, prev: torch.Tensor | None, proj: nn.Module | None = None) -> torch.Tensor:
    """Multiply this layer's attention map by the previous layer's (Eq. 1, "⊙ A_{i-1}").

    The previous map is brought to this map's spatial size by adaptive max pooling (the layers
    downsample by stride 2). When the channel counts differ it is mapped to this layer's channels
    by ``proj`` (``chain="conv"``: a learned 1x1 convolution, as in the authors' code) or, without
    ``proj``, averaged over its channels (``chain="mean"``, mepipe's default).
    """
    if prev is None:
        return a
    th, tw = a.shape[-2:]
    ph, pw = prev.shape[-2:]
    if (ph, pw) != (th, tw):
        prev = F.adaptive_max_pool2d(prev, (th, tw if pw != 1 else 1))
    if prev.shape[1] != a.shape[1]:
        prev = proj(prev) if proj is not None else prev.mean(dim=1, keepdim=True)
    return a * prev


#: how a layer's attention map is chained with the previous one when their channel counts differ
CHAINS = ("mean", "conv")


class CVAAttention(nn.Module):
    """CVA attention: per-row mean over the width -> :class:`ProfileAttention` -> ``(B, C, H, 1)``
    map that re-weights every column."""

    def __init__(self, channels: int):
        super().__init__()
        self.attn = ProfileAttention(channels)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, (x.shape[2], 1))

    def forward(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        return self.attn(self.pool(x))


class SOAAttention(nn.Module):
    """SOA attention: oriented pooling at angle θ -> :class:`ProfileAttention` -> mapped back onto
    the ``(B, C, H, W)`` map along the same direction. θ (radians) is passed in by the block, so
    that the angle can be per layer, shared or frozen."""

    def __init__(self, channels: int):
        super().__init__()
        self.attn = ProfileAttention(channels)

    def pool(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return oriented_pool(x, theta)

    def forward(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        a = self.attn(oriented_pool(x, theta))
        return oriented_unpool(a, theta, x.shape[2], x.shape[3])


class OrientedAttentionBlock(nn.Module):
    """The CVA block (``mode="cva"``) or its SOA replacement: four stacked modules, each a
    :class:`~mepipe.models.layers.ResidualBlock` (3x3 then 1x1 conv) followed by an attention map
    chained with the previous module's map; the features are re-weighted by broadcast
    multiplication (paper Eq. 1-4, 7).

    ``mode``: ``"cva"``; ``"independent"`` (one learnable θ per layer), ``"shared"`` (one learnable
    θ for all layers) or ``"frozen"`` (θ fixed, a buffer). ``init_deg`` sets the start angle in the
    reported convention (:mod:`mepipe.angles`: 90 = vertical = CVA). ``chain``: ``"mean"`` (the
    previous map averaged over its channels where the channel counts differ) or ``"conv"`` (a
    learned bias-free 1x1 convolution from the previous layer's channels to this layer's, the
    authors' ``conv2``/``conv3``, Kaiming-normal initialised like theirs); see :func:`chain_attention`.
    """

    MODES = ("cva", "independent", "shared", "frozen")

    def __init__(self, channels, strides, cin: int, mode: str = "cva", init_deg: float = 45.0, chain: str = "mean"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if chain not in CHAINS:
            raise ValueError(f"chain must be one of {CHAINS}, got {chain!r}")
        if len(channels) != len(strides):
            raise ValueError("channels and strides must have the same length")
        self.mode = mode
        self.chain = chain
        self.units = nn.ModuleList()
        self.attns = nn.ModuleList()
        self.chain_proj = nn.ModuleList()
        prev_c = None
        for cout, stride in zip(channels, strides):
            self.units.append(ResidualBlock(cin, cout, stride, kernel2=1))
            self.attns.append(CVAAttention(cout) if mode == "cva" else SOAAttention(cout))
            if chain == "conv" and prev_c is not None and prev_c != cout:
                conv = nn.Conv2d(prev_c, cout, 1, bias=False)
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                self.chain_proj.append(conv)
            else:
                self.chain_proj.append(nn.Identity())
            cin = prev_c = cout
        init = math.radians(init_deg)
        n = len(channels)
        if mode == "independent":
            self.theta = nn.Parameter(torch.full((n,), init))
        elif mode == "shared":
            self.theta = nn.Parameter(torch.full((1,), init))
        elif mode == "frozen":
            self.register_buffer("theta", torch.full((1,), init))
        else:
            self.theta = None

    def layer_thetas(self) -> list[torch.Tensor | None]:
        """The angle (radians, 0-d tensor) each layer uses, ``None`` for CVA."""
        n = len(self.units)
        if self.theta is None:
            return [None] * n
        if self.theta.numel() == 1:
            return [self.theta[0]] * n
        return [self.theta[i] for i in range(n)]

    def angles_deg(self) -> list[float]:
        """Angles of the layers in degrees in the reported convention (:func:`mepipe.angles.reported_deg`:
        folded into [0, 180), 90 = vertical); CVA reports 90 for every layer."""
        from ..angles import VERTICAL_DEG, reported_deg

        if self.theta is None:
            return [VERTICAL_DEG] * len(self.units)
        return [reported_deg(float(t.detach())) for t in self.layer_thetas()]

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        """Features ``(B, C_last, H', W')``; with ``return_maps`` also each layer's chained map."""
        prev = None
        maps = []
        for unit, attn, proj, theta in zip(self.units, self.attns, self.chain_proj, self.layer_thetas()):
            x = unit(x)
            a = chain_attention(attn(x, theta), prev, None if isinstance(proj, nn.Identity) else proj)
            x = x * a
            prev = a
            maps.append(a)
        return (x, maps) if return_maps else x
