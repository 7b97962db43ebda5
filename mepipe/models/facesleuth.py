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

from ..angles import DEFAULT_INIT_DEG
from ..aus import AU_LIST
from .attention import OrientedAttentionBlock
from .layers import check_aus, check_aus_mask, check_image, resize_to
from .registry import ModelConfig
from .swin import SwinEncoder


class FaceSleuth(nn.Module):
    """FaceSleuth with the CVA block (``attention="cva"``) or SOA layers
    (``"independent"``, ``"shared"``, ``"frozen"``).

    Call as ``model(onset=..., apex=..., aus=..., aus_mask=...)``: onset/apex float ``(B, 3, H, W)``
    BGR in [0, 1] (resized inside to ``input_size`` when ``H, W`` differ), aus ``(B, 21)`` 0/1,
    aus_mask ``(B, 1)`` (only with ``au_mask=True``: 1 where the dataset annotates AUs). Returns
    logits ``(B, num_classes)``.

    Options besides the widths: ``init_deg`` (SOA's start angle, reported convention of
    :mod:`mepipe.angles`; default 45, frozen 0), ``chain`` (``"mean"`` or ``"conv"``, see
    :class:`~mepipe.models.attention.OrientedAttentionBlock`), ``au_mask`` (append the mask bit to
    the AU vector so that "not annotated" differs from "no AU active"), ``channels`` (the four
    motion modules' widths, default ``(w, w, 2w, 4w)``), ``stem_width`` (the stride-2 stem's width,
    default ``channels[0]``; when it differs, a 3x3 conv + BN + ReLU maps it to ``channels[0]``, as
    the authors' 180 -> 128), ``head_hidden`` (the classifier's hidden width, default ``hidden // 2``).
    """

    def __init__(
        self,
        num_classes: int,
        attention: str = "cva",
        input_size: int = 128,
        width: int = 32,
        embed_dim: int = 32,
        depths=(2, 2, 6),
        heads=(2, 4, 8),
        window: int = 8,
        patch: int = 4,
        hidden: int = 256,
        dropout: float = 0.5,
        init_deg: float | None = None,
        use_aus: bool = True,
        au_mask: bool = False,
        chain: str = "mean",
        channels=None,
        stem_width: int | None = None,
        head_hidden: int | None = None,
        config: ModelConfig | None = None,
    ):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        if input_size // patch != 2 ** (len(depths) - 1) * (input_size // 16):
            raise ValueError(
                f"patch {patch} with {len(depths)} Swin stages does not reach the motion stream's "
                f"{input_size // 16}x{input_size // 16} grid; use patch = 16 / 2**(stages-1)"
            )
        if au_mask and not use_aus:
            raise ValueError("au_mask=True needs the AU vector (use_aus=True)")
        if init_deg is None:
            init_deg = 0.0 if attention == "frozen" else DEFAULT_INIT_DEG
        channels = (width, width, 2 * width, 4 * width) if channels is None else tuple(int(c) for c in channels)
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be four positive widths, got {channels}")
        stem_width = channels[0] if stem_width is None else int(stem_width)
        self.config = config
        self.input_size = input_size
        self.n_aus = len(AU_LIST) if use_aus else 0
        self.au_mask = bool(au_mask)
        stem: list[nn.Module] = [
            nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
        ]
        if stem_width != channels[0]:
            stem += [
                nn.Conv2d(stem_width, channels[0], 3, padding=1, bias=False),
                nn.BatchNorm2d(channels[0]),
                nn.ReLU(inplace=True),
            ]
        self.stem = nn.Sequential(*stem)
        self.motion = OrientedAttentionBlock(
            channels, (1, 2, 2, 2), cin=channels[0], mode=attention, init_deg=init_deg, chain=chain
        )
        self.fpf = SwinEncoder(
            img_size=input_size, patch=patch, in_ch=3, embed_dim=embed_dim, depths=depths, heads=heads, window=window
        )
        self.fpf_proj = None if self.fpf.out_dim == channels[-1] else nn.Conv2d(self.fpf.out_dim, channels[-1], 1)
        grid = input_size // 16
        self.fuse = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * grid * grid, hidden), nn.ReLU(inplace=True)
        )
        head_hidden = hidden // 2 if head_hidden is None else int(head_hidden)
        n_au_in = self.n_aus + (1 if self.au_mask else 0)
        self.head = nn.Sequential(
            nn.Linear(hidden + n_au_in, head_hidden), nn.ReLU(inplace=True), nn.Linear(head_hidden, num_classes)
        )

    # ---- SOA angles --------------------------------------------------------------------------
    def angles_deg(self) -> list[float]:
        """Orientation of each of the four attention layers in degrees, in [0, 180), in the
        reported convention of :mod:`mepipe.angles` (90 = vertical = CVA; 0 = horizontal)."""
        return self.motion.angles_deg()

    def theta_parameters(self) -> list[nn.Parameter]:
        """The learnable SOA angle parameters (empty for CVA and frozen SOA)."""
        t = self.motion.theta
        return [t] if isinstance(t, nn.Parameter) else []

    def param_groups(
        self, lr: float, weight_decay: float = 0.0, theta_lr: float | None = None, theta_weight_decay: float = 0.0
    ) -> list[dict]:
        """Optimiser parameter groups: the angles in their own group (own lr; no weight decay by
        default: decaying the raw angle would pull it toward 0 deg, horizontal)."""
        thetas = {id(p) for p in self.theta_parameters()}
        rest = [p for p in self.parameters() if id(p) not in thetas and p.requires_grad]
        groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay}]
        if thetas:
            groups.append(
                {
                    "params": self.theta_parameters(),
                    "lr": lr if theta_lr is None else theta_lr,
                    "weight_decay": theta_weight_decay,
                }
            )
        return groups

    # ---- forward ------------------------------------------------------------------------------
    def motion_features(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """The motion stream's output ``(B, C_last, S/16, S/16)`` (before the FPF is added)."""
        onset = resize_to(check_image("onset", onset, 3), self.input_size)
        apex = resize_to(check_image("apex", apex, 3), self.input_size)
        return self.motion(self.stem(apex - onset))

    def forward(
        self,
        onset: torch.Tensor,
        apex: torch.Tensor,
        aus: torch.Tensor | None = None,
        aus_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
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
            au = check_aus(aus, b, self.n_aus)
            if self.au_mask:
                if aus_mask is None:
                    raise TypeError("this model was built with au_mask=True and needs the 'aus_mask' input (B, 1)")
                m = check_aus_mask(aus_mask, b)
                au = torch.cat([au * m, m], dim=1)  # unknown: all zeros and mask 0; known: the bits and mask 1
            elif aus_mask is not None:
                raise TypeError("this model was built without au_mask and takes no 'aus_mask' input")
            feat = torch.cat([feat, au], dim=1)
        elif aus is not None or aus_mask is not None:
            raise TypeError("this model was built with use_aus=False and takes no 'aus' or 'aus_mask' input")
        return self.head(feat)


def _build(cfg: ModelConfig, num_classes: int, attention: str, **kwargs) -> FaceSleuth:
    size = kwargs.pop("input_size", cfg.input_size)
    model = FaceSleuth(num_classes, attention=attention, input_size=size, **kwargs)
    inputs = tuple(f for f in cfg.inputs if f not in ("aus", "aus_mask"))
    if model.n_aus:
        inputs += ("aus", "aus_mask") if model.au_mask else ("aus",)
    model.config = replace(cfg, input_size=size, inputs=inputs)
    return model


def build_cva(cfg, num_classes, **kwargs):
    """``facesleuth-cva``."""
    return _build(cfg, num_classes, "cva", **kwargs)


#: the widths of the authors' public code (``CASME2_5.py``: ``MMNet``, ``CA_block.py``: ``ResNet``)
AUTHORS_WIDTHS = dict(
    input_size=224,
    stem_width=180,
    channels=(128, 128, 256, 512),
    embed_dim=128,
    depths=(2, 2, 6),
    heads=(4, 8, 16),
    window=7,
    patch=4,
    hidden=512,
    head_hidden=128,
    dropout=0.0,
    chain="conv",
)


def build_cva_authors(cfg, num_classes, **kwargs):
    """``facesleuth-cva-authors``: CVA at the authors' widths (:data:`AUTHORS_WIDTHS`; ``kwargs`` override)."""
    return _build(cfg, num_classes, "cva", **{**AUTHORS_WIDTHS, **kwargs})


def build_soa_independent(cfg, num_classes, **kwargs):
    """``facesleuth-soa``: one learnable angle per SOA layer."""
    return _build(cfg, num_classes, "independent", **kwargs)


def build_soa_shared(cfg, num_classes, **kwargs):
    """``facesleuth-soa-shared``: one learnable angle for all four SOA layers."""
    return _build(cfg, num_classes, "shared", **kwargs)


def build_soa_frozen(cfg, num_classes, **kwargs):
    """``facesleuth-soa-frozen``: the angle fixed (0 deg = horizontal by default)."""
    return _build(cfg, num_classes, "frozen", **kwargs)


__all__ = [
    "FaceSleuth",
    "AUTHORS_WIDTHS",
    "DEFAULT_INIT_DEG",
    "build_cva",
    "build_cva_authors",
    "build_soa_independent",
    "build_soa_shared",
    "build_soa_frozen",
]
