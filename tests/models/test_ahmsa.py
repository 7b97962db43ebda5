"""AHMSA-Net: every weight reachable by the loss, input scaling fitted on training samples only,
the optional positional embedding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mepipe.models import create_model
from mepipe.models.ahmsa import AdaptiveDownsample, SpatialAttention

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(dims=(8, 8, 8), depths=(1, 1, 1), heads=1)


def one_backward(model, batch: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 28, 28, generator=g)
    y = torch.randint(0, 3, (batch,), generator=g)
    F.cross_entropy(model(ahmsa=x), y).backward()


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"pos_embed": True}, {"input_size": 14}, {"input_size": 56}],
    ids=["default", "pos_embed", "size14", "size56"],
)
def test_every_parameter_receives_a_gradient(kwargs):
    torch.manual_seed(0)
    model = create_model("ahmsa-net", 3, **kwargs)
    model.fit_inputs({"ahmsa": torch.randn(8, 3, 28, 28)})
    one_backward(model)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} has no gradient"
        assert p.grad.abs().sum() > 0, f"{name}: gradient identically zero"
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):  # every kernel tap touches the map it is applied to
            taps = mod.weight.grad.abs().sum(dim=(0, 1))
            assert (taps > 0).all(), f"{name}: kernel taps {(taps == 0).nonzero().tolist()} never get a gradient"
        if isinstance(mod, SpatialAttention):  # every Q, K and V channel matters to the output
            rows = mod.qkv.weight.grad.abs().flatten(1).sum(1)
            # Q and K of an attention over one patch get rounding noise only (~1e-7 of V's gradient)
            dead = rows < 1e-4 * rows.max()
            assert not dead.any(), f"{name}: {int(dead.sum())} Q/K/V output channels get no gradient"


def test_structure_two_downsamplings_and_a_value_only_top_level():
    model = create_model("ahmsa-net", 5)
    assert len(model.levels) == 3 and len(model.downs) == 2  # three levels, two scaling operations
    assert all(d.conv.kernel_size == (3, 3) for d in model.downs)  # on the 4x4 and 2x2 maps
    assert [blk.spatial.single for lvl in model.levels for blk in lvl] == [False] * 4 + [True] * 8
    assert all(blk.spatial.qkv.bias is None for lvl in model.levels for blk in lvl)
    # below 28 a downsampling meets a 1x1 map: its conv is 1x1, not a 3x3 with 8 dead taps
    small = create_model("ahmsa-net", 5, input_size=14)  # 2x2 patches: levels on 2x2, 1x1, 1x1
    assert [d.conv.kernel_size for d in small.downs] == [(3, 3), (1, 1)]
    assert AdaptiveDownsample(4, 4, side=1).conv.kernel_size == (1, 1)


def test_single_patch_attention_equals_the_full_formula():
    torch.manual_seed(0)
    full, single = SpatialAttention(16, 4), SpatialAttention(16, 4, tokens=1)
    with torch.no_grad():
        single.qkv.weight.copy_(full.qkv.weight[32:])  # the V rows
        single.out.load_state_dict(full.out.state_dict())
    x = torch.randn(3, 16, 1, 1)
    torch.testing.assert_close(single(x), full(x))
    with pytest.raises(ValueError, match="one patch"):
        single(torch.randn(1, 16, 2, 2))


def test_fit_inputs_sets_the_rms_scales():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (10, 3, 28, 28)).astype(np.float32)
    a[:, 0] *= 3.0  # u larger than v: they still share one scale, so a flow vector keeps its direction
    a[:, 2] = np.abs(a[:, 2]) * 0.01
    model = create_model("ahmsa-net", 3, **TINY)
    scales = model.fit_inputs({"ahmsa": a, "aus": np.zeros((10, 21))})
    flow_rms = float(np.sqrt(np.mean(a[:, :2].astype(np.float64) ** 2)))
    strain_rms = float(np.sqrt(np.mean(a[:, 2].astype(np.float64) ** 2)))
    assert scales == pytest.approx({"u": flow_rms, "v": flow_rms, "strain": strain_rms})
    torch.testing.assert_close(model.input_scale, torch.tensor([flow_rms, flow_rms, strain_rms]))
    assert bool(model.input_fitted)
    zero = create_model("ahmsa-net", 3, **TINY)
    assert zero.fit_inputs({"ahmsa": np.zeros((2, 3, 28, 28))}) == {"u": 1.0, "v": 1.0, "strain": 1.0}
    with pytest.raises(ValueError, match="N, 3, H, W"):
        zero.fit_inputs({"ahmsa": np.zeros((0, 3, 28, 28))})
    with pytest.raises(KeyError, match="ahmsa"):
        zero.fit_inputs({"flow": a})


def test_scaled_model_does_not_depend_on_the_units_of_its_input():
    """Flow in pixels of another grid (a factor k) gives the same logits once fitted: what the
    network sees is the input over its training RMS."""
    rng = np.random.default_rng(1)
    train = rng.normal(0, 0.3, (12, 3, 28, 28)).astype(np.float32)
    x = torch.from_numpy(rng.normal(0, 0.3, (4, 3, 28, 28)).astype(np.float32))
    k = torch.tensor([7.0, 7.0, 0.5]).view(1, 3, 1, 1)
    torch.manual_seed(0)
    a = create_model("ahmsa-net", 3, **TINY).eval()
    b = create_model("ahmsa-net", 3, **TINY).eval()
    b.load_state_dict(a.state_dict())
    a.fit_inputs({"ahmsa": train})
    b.fit_inputs({"ahmsa": torch.from_numpy(train) * k})
    with torch.no_grad():
        torch.testing.assert_close(a(ahmsa=x), b(ahmsa=x * k), rtol=1e-4, atol=1e-5)
    raw = create_model("ahmsa-net", 3, input_norm="none", **TINY).eval()
    assert raw.fit_inputs({"ahmsa": train}) is None and "input_scale" not in raw.state_dict()


def test_scales_travel_with_the_weights():
    a = create_model("ahmsa-net", 3, **TINY)
    a.fit_inputs({"ahmsa": np.full((2, 3, 28, 28), 2.0, np.float32)})
    b = create_model("ahmsa-net", 3, **TINY)
    assert not bool(b.input_fitted)
    b.load_state_dict(a.state_dict())
    assert bool(b.input_fitted) and b.input_scale.tolist() == [2.0, 2.0, 2.0]


def test_training_unfitted_warns_once_and_bad_norm_is_refused():
    m = create_model("ahmsa-net", 3, **TINY)
    with pytest.warns(RuntimeWarning, match="fit_inputs"):
        m(ahmsa=torch.randn(2, 3, 28, 28))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(ahmsa=torch.randn(2, 3, 28, 28))  # once only
        create_model("ahmsa-net", 3, input_norm="none", **TINY)(ahmsa=torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="input_norm"):
        create_model("ahmsa-net", 3, input_norm="std")


def test_positional_embedding_option():
    off = create_model("ahmsa-net", 5)
    on = create_model("ahmsa-net", 5, pos_embed=True)
    n_off = sum(p.numel() for p in off.parameters())
    n_on = sum(p.numel() for p in on.parameters())
    assert off.pos is None and on.pos.shape == (1, 128, 4, 4) and n_on - n_off == 128 * 16
    on.fit_inputs({"ahmsa": torch.randn(4, 3, 28, 28)})
    out = on(ahmsa=torch.randn(2, 3, 28, 28))
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.sum().backward()
    assert on.pos.grad is not None and on.pos.grad.abs().sum() > 0
    # the embedding tells the patches apart: with it, moving content to another patch changes the output
    torch.manual_seed(0)
    m = create_model("ahmsa-net", 3, pos_embed=True, **TINY).eval()
    with torch.no_grad():
        m.pos.normal_(0, 1.0)
        x = torch.randn(1, 3, 28, 28)
        swapped = torch.cat([x[..., 14:], x[..., :14]], dim=-1)  # left and right halves exchanged
        assert not torch.allclose(m(ahmsa=x), m(ahmsa=swapped))


def test_trainer_fits_the_scales_on_the_training_fold_only(tmp_path):
    """The test samples of a fold (here 1000 times larger) leave its scales untouched."""
    from mepipe.train.config import TrainConfig
    from mepipe.train.fold import FoldContext, train_fold
    from mepipe.train.protocols import Fold

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.5, (18, 3, 28, 28)).astype(np.float32)
    y = np.arange(18, dtype=np.int64) % 3
    fold = Fold(0, "s1", train=np.arange(6, 18), test=np.arange(0, 6))
    cfg = TrainConfig.create("ahmsa-net", epochs=1, batch_size=4, lr=1e-3, model_kwargs=TINY, device="cpu")
    scales = []
    for k, factor in enumerate((1.0, 1000.0)):
        data = {"ahmsa": x.copy()}
        data["ahmsa"][fold.test] *= factor
        (tmp_path / f"r{k}" / "folds").mkdir(parents=True)
        ctx = FoldContext(classes=("a", "b", "c"), device="cpu", out=str(tmp_path / f"r{k}"))
        train_fold(fold, data, y, cfg, ctx)
        state = torch.load(tmp_path / f"r{k}" / "fold-00.pt", weights_only=True)
        assert bool(state["input_fitted"])
        scales.append(state["input_scale"])
    t = x[fold.train].astype(np.float64)
    expected = [np.sqrt(np.mean(t[:, :2] ** 2))] * 2 + [np.sqrt(np.mean(t[:, 2] ** 2))]
    torch.testing.assert_close(scales[0], torch.tensor(expected, dtype=torch.float32))
    assert torch.equal(scales[0], scales[1])
