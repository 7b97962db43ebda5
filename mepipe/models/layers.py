"""Small building blocks shared by the bundled models (pure torch)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` map (each pixel normalised alone)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def check_image(name: str, x, channels: int | None = None) -> torch.Tensor:
    """Check that ``x`` is a float ``(B, C, H, W)`` tensor (with ``channels`` channels if given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input {name!r} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"input {name!r} must be (B, C, H, W), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"input {name!r} must have {channels} channels, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    return x


def check_aus(x, batch: int, n_aus: int) -> torch.Tensor:
    """Check that ``x`` is an ``(B, n_aus)`` AU vector and return it as float."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input 'aus' must be a torch.Tensor, got {type(x).__name__}")
    if x.shape != (batch, n_aus):
        raise ValueError(f"input 'aus' must have shape ({batch}, {n_aus}), got {tuple(x.shape)}")
    return x.float()


def check_aus_mask(x, batch: int) -> torch.Tensor:
    """Check that ``x`` is an ``(B, 1)`` (or ``(B,)``) 0/1 AU-annotation mask and return it as float ``(B, 1)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input 'aus_mask' must be a torch.Tensor, got {type(x).__name__}")
    if x.shape == (batch,):
        x = x.view(batch, 1)
    if x.shape != (batch, 1):
        raise ValueError(f"input 'aus_mask' must have shape ({batch}, 1), got {tuple(x.shape)}")
    return x.float()


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinearly resize a ``(B, C, H, W)`` map to ``size x size`` (no-op when already that size).

    Values are not rescaled: a flow field keeps its units of the original pixel grid.
    """
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """``k x k`` convolution (no bias, 'same' padding) followed by BatchNorm."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class ResidualBlock(nn.Module):
    """conv ``3x3`` (stride) + BN + ReLU, conv ``kernel2 x kernel2`` + BN, plus an identity or
    1x1-projected shortcut, ReLU. ``kernel2=3``: ResNet's basic block; ``kernel2=1``: the residual
    unit of FaceSleuth's CVA modules (paper Eq. 1)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, kernel2: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, kernel2, padding=kernel2 // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.shortcut is None else self.shortcut(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + idt)
