"""The compact Swin encoder of the Facial Position Focalizer, on its own."""

from __future__ import annotations

import pytest
import torch

from mepipe.models.swin import SwinBlock, SwinEncoder, window_partition, window_reverse

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_encoder_shapes():
    enc = SwinEncoder(img_size=64, patch=4, embed_dim=16, depths=(2, 2, 6), heads=(1, 2, 4), window=4)
    assert enc(torch.randn(2, 3, 64, 64)).shape == (2, 64, 4, 4)
    assert (enc.out_dim, enc.out_res) == (64, 4)


def test_window_partition_round_trip():
    x = torch.randn(2, 8, 8, 5)
    assert torch.equal(window_reverse(window_partition(x, 4), 4, 8, 8), x)


def test_unshifted_block_attends_within_windows_only():
    torch.manual_seed(0)
    blk = SwinBlock(dim=8, resolution=8, heads=2, ws=4, shift=0).eval()
    x = torch.randn(1, 64, 8)
    y = torch.randn_like(x)
    y[:] = x
    y[0, 0] += torch.randn(8)  # token (0, 0): top-left window (not a constant: LayerNorm removes that)
    diff = (blk(x) - blk(y)).abs().sum(-1).view(8, 8)
    assert (diff[:4, :4] > 1e-4).all()
    assert diff[4:, :].sum() == 0 and diff[:, 4:].sum() == 0


def test_shifted_block_crosses_window_borders_but_masks_wrapped_tokens():
    torch.manual_seed(0)
    blk = SwinBlock(dim=8, resolution=8, heads=2, ws=4, shift=2).eval()
    x = torch.randn(1, 64, 8)
    y = x.clone()
    y[0, 3 * 8 + 3] += torch.randn(8)  # token (3, 3): after the shift it shares a window with (4..5, 4..5)
    diff = (blk(x) - blk(y)).abs().sum(-1).view(8, 8)
    assert (diff[2:6, 2:6] > 1e-4).all()  # the shifted window spans the original windows' border
    # the cyclic shift wraps rows/cols 0-1 to the far side; the mask keeps them apart
    z = x.clone()
    z[0, 0] += torch.randn(8)  # token (0, 0) after the shift sits in the last window with wrapped tokens only
    diff0 = (blk(x) - blk(z)).abs().sum(-1).view(8, 8)
    assert (diff0[:2, :2] > 1e-4).all()
    assert diff0[6:, 6:].sum() == 0 and diff0[2:6, 2:6].sum() == 0


def test_relative_position_bias_is_used():
    torch.manual_seed(0)
    blk = SwinBlock(dim=8, resolution=4, heads=2, ws=4, shift=0).eval()
    x = torch.randn(1, 16, 8)
    a = blk(x)
    with torch.no_grad():
        blk.attn.bias_table.add_(torch.randn_like(blk.attn.bias_table))
    assert not torch.allclose(a, blk(x))


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        SwinEncoder(img_size=30, patch=4)
    with pytest.raises(ValueError):
        SwinBlock(dim=8, resolution=12, heads=3, ws=8, shift=0)
