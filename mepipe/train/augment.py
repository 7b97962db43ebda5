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
"""
from __future__ import annotations

import numpy as np

from ..errors import MepipeError

AUGMENTATIONS = ("none", "hflip")

#: field -> channel to negate after mirroring (None: mirror only); "keep": leave unchanged
FLIP_RULES: dict[str, object] = {
    "onset": None,
    "apex": None,
    "strain": None,
    "flow": 0,
    "strain_components": 2,
    "ahmsa": 0,
    "aus": "keep",
}


class AugmentError(MepipeError):
    pass


def check_flippable(fields) -> None:
    bad = [f for f in fields if f not in FLIP_RULES]
    if bad:
        raise AugmentError(
            f"horizontal flip does not know how to mirror field(s) {', '.join(bad)}; "
            f"use augment='none' or inputs among {', '.join(FLIP_RULES)}")


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
