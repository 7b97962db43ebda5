"""FaceSleuth (CVA) and FaceSleuth-R (SOA) micro-expression networks.

Structure (docs/models.md has the paper-vs-choice table):

* motion stream: ``apex - onset`` -> 3x3 conv stride 2 + BN + ReLU (stem) -> the CVA block, or
  its SOA replacement: four modules, each two conv layers with a residual connection followed by
  an attention map chained with the previous module's map (:mod:`mepipe.models.attention`);
  channels ``(w, w, 2w, 4w)``, strides ``(1, 2, 2, 2)``: ``(B, 4w, S/16, S/16)``;
* Facial Position Focalizer: a compact Swin encoder (depths [2, 2, 6]) run on onset and on apex
  separately (shared weights), outputs ``(B, 4e, S/16, S/16)`` added; a 1x1 conv maps ``4e`` to
  ``4w`` channels when the widths differ;
* fusion: motion + position features, flattened, projected to ``hidden`` features, concatenated
  with the 21-AU vector (:data:`mepipe.aus.AU_LIST`), then an MLP classifier.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from ..aus import AU_LIST
from .attention import OrientedAttentionBlock
from .layers import check_aus, check_image, resize_to
from .registry import ModelConfig
from .swin import SwinEncoder


class FaceSleuth(nn.Module):
    """FaceSleuth with the CVA block (``attention="cva"``) or SOA layers
    (``"independent"``, ``"shared"``, ``"frozen"``).

    Call as ``model(onset=..., apex=..., aus=...)``: onset/apex float ``(B, 3, H, W)`` BGR in
    [0, 1] (resized inside to ``input_size`` when ``H, W`` differ), aus ``(B, 21)`` 0/1. Returns
    logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, attention: str = "cva", input_size: int = 128, width: int = 32,
                 embed_dim: int = 32, depths=(2, 2, 6), heads=(2, 4, 8), window: int = 8, patch: int = 4,
                 hidden: int = 256, dropout: float = 0.5, theta_init_deg: float | None = None,
                 use_aus: bool = True, config: ModelConfig | None = None):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        if input_size // patch != 2 ** (len(depths) - 1) * (input_size // 16):
            raise ValueError(
                f"patch {patch} with {len(depths)} Swin stages does not reach the motion stream's "
                f"{input_size // 16}x{input_size // 16} grid; use patch = 16 / 2**(stages-1)"
            )
        if theta_init_deg is None:
            theta_init_deg = 0.0 if attention == "frozen" else 45.0
        self.config = config
        self.input_size = input_size
        self.n_aus = len(AU_LIST) if use_aus else 0
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        channels = (width, width, 2 * width, 4 * width)
        self.motion = OrientedAttentionBlock(channels, (1, 2, 2, 2), cin=width, mode=attention,
                                             theta_init_deg=theta_init_deg)
        self.fpf = SwinEncoder(img_size=input_size, patch=patch, in_ch=3, embed_dim=embed_dim, depths=depths,
                               heads=heads, window=window)
        self.fpf_proj = None if self.fpf.out_dim == channels[-1] else nn.Conv2d(self.fpf.out_dim, channels[-1], 1)
        grid = input_size // 16
        self.fuse = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * grid * grid, hidden),
                                  nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Linear(hidden + self.n_aus, hidden // 2), nn.ReLU(inplace=True),
                                  nn.Linear(hidden // 2, num_classes))

    # ---- SOA angles --------------------------------------------------------------------------
    def angles_deg(self) -> list[float]:
        """Orientation of each of the four attention layers in degrees, in [0, 180)
        (90 = vertical = CVA; 0 = horizontal)."""
        return self.motion.angles_deg()

    def theta_parameters(self) -> list[nn.Parameter]:
        """The learnable SOA angle parameters (empty for CVA and frozen SOA)."""
        t = self.motion.theta
        return [t] if isinstance(t, nn.Parameter) else []

    def param_groups(self, lr: float, weight_decay: float = 0.0, theta_lr: float | None = None,
                     theta_weight_decay: float = 0.0) -> list[dict]:
        """Optimiser parameter groups: the angles in their own group (own lr and weight decay)."""
        thetas = {id(p) for p in self.theta_parameters()}
        rest = [p for p in self.parameters() if id(p) not in thetas and p.requires_grad]
        groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay}]
        if thetas:
            groups.append({"params": self.theta_parameters(), "lr": lr if theta_lr is None else theta_lr,
                           "weight_decay": theta_weight_decay})
        return groups

    # ---- forward ------------------------------------------------------------------------------
    def forward(self, onset: torch.Tensor, apex: torch.Tensor, aus: torch.Tensor | None = None) -> torch.Tensor:
        onset = resize_to(check_image("onset", onset, 3), self.input_size)
        apex = resize_to(check_image("apex", apex, 3), self.input_size)
        if onset.shape != apex.shape:
            raise ValueError(f"onset {tuple(onset.shape)} and apex {tuple(apex.shape)} differ in shape")
        b = onset.shape[0]
        motion = self.motion(self.stem(apex - onset))
        pos = self.fpf(torch.cat([onset, apex], dim=0))
        if self.fpf_proj is not None:
            pos = self.fpf_proj(pos)
        pos_on, pos_ap = pos[:b], pos[b:]
        feat = self.fuse(motion + pos_on + pos_ap)
        if self.n_aus:
            if aus is None:
                raise TypeError("this model needs the 'aus' input (B, 21); build it with use_aus=False to omit it")
            feat = torch.cat([feat, check_aus(aus, b, self.n_aus)], dim=1)
        elif aus is not None:
            raise TypeError("this model was built with use_aus=False and takes no 'aus' input")
        return self.head(feat)


def _build(cfg: ModelConfig, num_classes: int, attention: str, **kwargs) -> FaceSleuth:
    size = kwargs.pop("input_size", cfg.input_size)
    model = FaceSleuth(num_classes, attention=attention, input_size=size, **kwargs)
    inputs = cfg.inputs if model.n_aus else tuple(f for f in cfg.inputs if f != "aus")
    model.config = replace(cfg, input_size=size, inputs=inputs)
    return model


def build_cva(cfg, num_classes, **kwargs):
    """``facesleuth-cva``."""
    return _build(cfg, num_classes, "cva", **kwargs)


def build_soa_independent(cfg, num_classes, **kwargs):
    """``facesleuth-soa``: one learnable angle per SOA layer."""
    return _build(cfg, num_classes, "independent", **kwargs)


def build_soa_shared(cfg, num_classes, **kwargs):
    """``facesleuth-soa-shared``: one learnable angle for all four SOA layers."""
    return _build(cfg, num_classes, "shared", **kwargs)


def build_soa_frozen(cfg, num_classes, **kwargs):
    """``facesleuth-soa-frozen``: the angle fixed (0 deg = horizontal by default)."""
    return _build(cfg, num_classes, "frozen", **kwargs)


__all__ = ["FaceSleuth", "build_cva", "build_soa_independent", "build_soa_shared", "build_soa_frozen"]
