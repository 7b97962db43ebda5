"""Synthetic check of SOA's claim: the learned angle moves to the discriminative motion axis.

:func:`oblique_ridges` draws single-channel "motion" maps whose class is coded by the position
of a ridge *along* a chosen axis θ* (the ridge runs orthogonally to it), under Gaussian pixel
noise; averaging along lines orthogonal to θ* keeps the ridge sharp, any other angle smears it
across positions. :class:`OrientationProbe` is one SOA layer (oriented pooling at a learnable θ,
the SOA bottleneck attention on the profile) and a linear classifier on the attended profile.
:func:`train_probe` trains it with Adam and returns the angle after every step. Used by
``tests/models/test_soa.py`` (short run) and ``benchmarks/soa_angle.py`` (long run, plots).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..angles import axis_distance, reported_deg
from .attention import ProfileAttention, oriented_pool


def oblique_ridges(
    n: int,
    theta_deg: float,
    size: int = 32,
    n_classes: int = 3,
    seed: int = 0,
    noise: float = 1.0,
    sigma: float = 2.0,
    spacing: float = 8.0,
    jitter: float = 0.5,
):
    """``(x (n, 1, size, size) float32, y (n,) int64)``: class ``k`` puts a Gaussian ridge
    (width ``sigma``) at position ``(k - (K-1)/2) * spacing`` (± ``jitter``) along the axis
    ``d = (cos θ*, sin θ*)`` (image x right, y down; same convention as SOA), plus noise."""
    if n < 1 or size < 8 or n_classes < 2:
        raise ValueError("need n >= 1, size >= 8, n_classes >= 2")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    th = math.radians(theta_deg)
    t = xx * math.cos(th) + yy * math.sin(th)
    pos = (y.float() - (n_classes - 1) / 2) * spacing + torch.randn(n, generator=g) * jitter
    x = torch.exp(-0.5 * ((t[None] - pos[:, None, None]) / sigma) ** 2)
    x = x + noise * torch.randn(n, size, size, generator=g)
    return x.unsqueeze(1), y


class OrientationProbe(nn.Module):
    """One SOA layer reduced to its essentials: ``profile = OAP(x, θ)``,
    ``z = profile * attention(profile)``, ``logits = Linear(flatten(z))``."""

    def __init__(self, size: int = 32, n_classes: int = 3, channels: int = 1, init_deg: float = 90.0):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(math.radians(init_deg)))
        self.attn = ProfileAttention(channels)
        self.fc = nn.Linear(channels * size, n_classes)

    def angle_deg(self) -> float:
        """Current angle in degrees, folded into [0, 180) (:func:`mepipe.angles.reported_deg`)."""
        return reported_deg(float(self.theta.detach()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = oriented_pool(x, self.theta)
        return self.fc((p * self.attn(p)).flatten(1))


def train_probe(
    target_deg: float,
    init_deg: float = 90.0,
    steps: int = 100,
    batch: int = 32,
    size: int = 32,
    n_classes: int = 3,
    seed: int = 0,
    theta_lr: float = 0.03,
    lr: float = 0.01,
    **data_kw,
):
    """Train an :class:`OrientationProbe` on fresh :func:`oblique_ridges` batches.

    Returns ``(angles, losses)``: the angle in degrees ([0, 180)) before training and after each
    step, and the loss of each step.
    """
    torch.manual_seed(seed)
    model = OrientationProbe(size, n_classes, init_deg=init_deg)
    rest = [p for name, p in model.named_parameters() if name != "theta"]
    opt = torch.optim.Adam([{"params": [model.theta], "lr": theta_lr}, {"params": rest, "lr": lr}])
    angles, losses = [model.angle_deg()], []
    for step in range(steps):
        x, y = oblique_ridges(batch, target_deg, size, n_classes, seed=seed * 100003 + step, **data_kw)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        angles.append(model.angle_deg())
        losses.append(float(loss.detach()))
    return angles, losses


__all__ = ["oblique_ridges", "OrientationProbe", "train_probe", "axis_distance"]
