"""Training-time augmentation of model inputs (dicts of arrays or tensors, as ``CacheDataset`` yields).

Horizontal flip, field by field (the image is mirrored about its vertical centre line,
``x -> W-1-x``):

* ``onset``, ``apex`` (C,H,W), ``strain`` (1,H,W): mirrored.
* ``flow`` (2,H,W) = (u, v): mirrored **and u negated** (a motion to the right becomes a motion to
  the left); v keeps its sign.
* ``strain_components`` (3,H,W) = (e_xx, e_yy, e_xy): mirrored; with ``u' = -u`` and ``x' = -x``,
  ``e_xx = du/dx`` and ``e_yy`` keep their sign and ``e_xy = (du/dy + dv/dx)/2`` changes sign.
* ``ahmsa`` (3,28,28) = five-region composition of (u, v, strain): the composition places the
  regions left/right symmetrically (left eye | right eye, left mouth corner | right mouth corner,
  nose centred), so mirroring the composite equals composing the mirrored face: each region is
  mirrored and the left/right regions swap places; u is negated as for ``flow``.
* ``aus`` (21,): unchanged. The AU vector is side-free (L/R/B markers are dropped when the cache
  writes it), so a mirrored face has the same vector; the sides live in the ``aus_text`` metadata,
  where :func:`mepipe.aus.mirror_aus` swaps them.
* ``landmarks``: not flippable here (mirroring MediaPipe's 478 points needs their left/right
  permutation); asking to flip it is an error.

Arrays may carry leading batch dimensions: only the last axis (width) and the channel axis (third
from last) are touched.

``paper`` (:func:`paper_batch`): the FaceSleuth authors' training augmentation, per sample, the
same draw for every field of a sample (they transform onset and apex stacked together): a
horizontal flip with probability 0.5, a rotation by an angle uniform in [-3°, 3°] and a random
crop of the frame's size after zero padding of 15/224 of the side on every edge (15 px at their
224 px; 9 px at 128, 4 px at 64), i.e. an integer shift of up to that many pixels. Every field is
resampled (bilinear, zero outside the frame) through the one affine map ``p' = R F p + t`` about the
frame centre (``F`` the flip, ``R`` the rotation, ``t`` the shift), and the vector and tensor fields
are turned with it: ``flow' = A flow`` and ``E' = A E Aᵀ`` for the strain tensor ``E`` (``A = R F``),
so that the transformed flow still carries the transformed onset onto the transformed apex.
``ahmsa`` (a composite of five face regions, not an image of the face) and ``landmarks`` cannot be
rotated: refused. ``paper-noflip`` is the same without the flip.

**Orientation.** A flip turns an axis θ into 180° - θ (:func:`mepipe.angles.mirrored`): only the
horizontal and vertical axes survive it. A model that learns its orientation (SOA) trained on
flipped and unflipped samples sees the discriminative axis at θ and at 180° - θ at once, and its
angle is pulled between the two (a colleague measured a 60° axis read as 91° with flips): the angle
no longer measures the data. So ``hflip`` and ``paper`` are refused for such models before any work
(:func:`check_augment`); CVA (vertical, its own mirror image) takes them. A rotation by φ turns
every axis by φ (:func:`mepipe.angles.rotated`): the ±3° of ``paper``/``paper-noflip`` spread the
axis symmetrically by up to 3° without moving its mean, so SOA takes ``paper-noflip``.
"""

from __future__ import annotations

import numpy as np

from ..errors import MepipeError

AUGMENTATIONS = ("none", "hflip", "paper", "paper-noflip")
#: augmentations that mirror images horizontally
FLIPPING = ("hflip", "paper")
#: the FaceSleuth authors' augmentation (CASME2_5.py: RandomHorizontalFlip(0.5), RandomRotation(3),
#: RandomCrop(224, padding=15) at 224 px)
PAPER_AUGMENT = {"flip_p": 0.5, "max_rotation_deg": 3.0, "padding_frac": 15 / 224}
#: fields :func:`affine_batch` knows how to transform: None scalar map, "vector", "tensor", "keep"
AFFINE_RULES: dict[str, str | None] = {
    "onset": None,
    "apex": None,
    "strain": None,
    "flow": "vector",
    "strain_components": "tensor",
    "aus": "keep",
    "aus_mask": "keep",
}

#: field -> channel to negate after mirroring (None: mirror only); "keep": leave unchanged
FLIP_RULES: dict[str, object] = {
    "onset": None,
    "apex": None,
    "strain": None,
    "flow": 0,
    "strain_components": 2,
    "ahmsa": 0,
    "aus": "keep",
    "aus_mask": "keep",
}


class AugmentError(MepipeError):
    pass


def check_flippable(fields) -> None:
    bad = [f for f in fields if f not in FLIP_RULES]
    if bad:
        raise AugmentError(
            f"horizontal flip does not know how to mirror field(s) {', '.join(bad)}; "
            f"use augment='none' or inputs among {', '.join(FLIP_RULES)}"
        )


def _flip_one(name: str, a):
    rule = FLIP_RULES.get(name)
    if name not in FLIP_RULES:
        check_flippable([name])
    if rule == "keep":
        return a
    if isinstance(a, np.ndarray):
        out = a[..., ::-1].copy()
        if rule is not None:
            out[..., rule, :, :] = -out[..., rule, :, :]
        return out
    import torch

    out = torch.flip(a, dims=(-1,))
    if rule is not None:
        out[..., rule, :, :] = -out[..., rule, :, :]
    return out


def hflip(inputs: dict) -> dict:
    """Mirror every field of one sample (or of a whole batch) horizontally; returns a new dict."""
    return {k: _flip_one(k, v) for k, v in inputs.items()}


def hflip_batch(inputs: dict, mask) -> dict:
    """Mirror the samples of a batch where ``mask`` (bool tensor (B,)) is true."""
    import torch

    if not bool(mask.any()):
        return inputs
    out = {}
    for k, v in inputs.items():
        if FLIP_RULES.get(k) == "keep":
            out[k] = v
            continue
        f = _flip_one(k, v)
        m = mask.view((-1,) + (1,) * (v.dim() - 1)).to(v.device)
        out[k] = torch.where(m, f, v)
    return out


# ---- the authors' augmentation: flip, rotation, random crop as one affine map ---------------------


def check_augment(augment: str, fields) -> None:
    """Refuse an augmentation that cannot transform every field (raises :class:`AugmentError`)."""
    if augment == "hflip":
        check_flippable(fields)
    elif augment in ("paper", "paper-noflip"):
        bad = [f for f in fields if f not in AFFINE_RULES]
        if bad:
            raise AugmentError(
                f"--augment {augment} rotates and shifts images and does not know how to transform field(s) "
                f"{', '.join(bad)}; use augment='none' or inputs among {', '.join(AFFINE_RULES)}"
            )


def affine_matrices(flip, angle_deg, shift_px):
    """The linear parts ``A = R F`` ``(B, 2, 2)`` of the per-sample maps ``p' = A p + t`` in pixel
    coordinates (x right, y down, origin at the frame centre): ``F`` mirrors x where ``flip``, ``R``
    turns by ``angle_deg`` (x toward y: clockwise on screen, the sense of :func:`mepipe.angles.rotated`).
    Returns ``(A, t)`` float64 tensors."""
    import torch

    flip = torch.as_tensor(flip, dtype=torch.bool)
    phi = torch.deg2rad(torch.as_tensor(angle_deg, dtype=torch.float64))
    c, s = torch.cos(phi), torch.sin(phi)
    sx = torch.where(flip, -1.0, 1.0).to(torch.float64)
    a = torch.stack([torch.stack([c * sx, -s], -1), torch.stack([s * sx, c], -1)], -2)  # R @ diag(sx, 1)
    return a, torch.as_tensor(shift_px, dtype=torch.float64).reshape(-1, 2)


def affine_batch(inputs: dict, flip, angle_deg, shift_px) -> dict:
    """Apply the map ``p' = A p + t`` (:func:`affine_matrices`) to every field of a batch of tensors
    ``(B, C, H, W)``: bilinear resampling with zeros outside the frame; ``flow`` vectors become
    ``A (u, v)``, the strain tensor ``A E Aᵀ``; ``aus``/``aus_mask`` are kept. Returns a new dict."""
    import torch
    import torch.nn.functional as F

    check_augment("paper", inputs)
    a, t = affine_matrices(flip, angle_deg, shift_px)
    out = {}
    for name, v in inputs.items():
        rule = AFFINE_RULES[name]
        if rule == "keep":
            out[name] = v
            continue
        b, _, h, w = v.shape
        scale = torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64)
        inv = torch.linalg.inv(a)  # (B, 2, 2)
        m = scale.view(1, 2, 1) * inv / scale.view(1, 1, 2)  # S A^-1 S^-1
        off = -(scale.view(1, 2) * (inv @ t.unsqueeze(-1)).squeeze(-1))  # -S A^-1 t
        theta = torch.cat([m, off.unsqueeze(-1)], dim=2).to(v.dtype).to(v.device)
        grid = F.affine_grid(theta, list(v.shape), align_corners=False)
        r = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        ad = a.to(v.dtype).to(v.device)
        if rule == "vector":
            r = torch.einsum("bij,bjhw->bihw", ad, r)
        elif rule == "tensor":
            exx, eyy, exy = r[:, 0], r[:, 1], r[:, 2]
            e = torch.stack([torch.stack([exx, exy], 1), torch.stack([exy, eyy], 1)], 1)  # (B, 2, 2, H, W)
            e = torch.einsum("bij,bjkhw,blk->bilhw", ad, e, ad)
            r = torch.stack([e[:, 0, 0], e[:, 1, 1], e[:, 0, 1]], 1)
        out[name] = r
    return out


def paper_batch(inputs: dict, gen, flip: bool = True) -> dict:
    """The authors' augmentation (:data:`PAPER_AUGMENT`) on a batch, one draw per sample from the
    torch generator ``gen``; ``flip=False`` gives ``paper-noflip``."""
    import torch

    first = next(v for k, v in inputs.items() if AFFINE_RULES.get(k) != "keep")
    b, h, w = first.shape[0], first.shape[-2], first.shape[-1]
    p = PAPER_AUGMENT
    flips = (torch.rand(b, generator=gen) < p["flip_p"]) if flip else torch.zeros(b, dtype=torch.bool)
    angles = (torch.rand(b, generator=gen, dtype=torch.float64) * 2 - 1) * p["max_rotation_deg"]
    pad = torch.tensor([round(p["padding_frac"] * w), round(p["padding_frac"] * h)])
    shifts = torch.stack(
        [
            torch.randint(-int(pad[0]), int(pad[0]) + 1, (b,), generator=gen),
            torch.randint(-int(pad[1]), int(pad[1]) + 1, (b,), generator=gen),
        ],
        1,
    )
    return affine_batch(inputs, flips, angles, shifts)


def batch_augmenter(augment: str):
    """``f(inputs, gen) -> inputs`` for a training batch under ``augment``, or ``None`` for ``none``."""
    import torch

    if augment == "none":
        return None
    if augment == "hflip":

        def flip(inputs, gen):
            return hflip_batch(inputs, torch.rand(len(next(iter(inputs.values()))), generator=gen) < 0.5)

        return flip
    if augment in ("paper", "paper-noflip"):
        return lambda inputs, gen: paper_batch(inputs, gen, flip=augment == "paper")
    raise AugmentError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
