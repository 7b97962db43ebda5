"""Single-Orientation Attention: oriented pooling, its θ gradient, the θ = 90° ↔ CVA identity,
parameter overhead, and the synthetic oblique-axis claim."""

from __future__ import annotations

import math

import pytest
import torch

from mepipe.models import create_model
from mepipe.models.attention import (
    CVAAttention,
    OrientedAttentionBlock,
    SOAAttention,
    oriented_pool,
    oriented_unpool,
)
from mepipe.models.soa_probe import axis_distance, oblique_ridges, train_probe

pytestmark = pytest.mark.usefixtures("torch_one_thread")


SMALL = dict(input_size=32, width=8, embed_dim=8, heads=(1, 2, 2), window=4, hidden=32)


def _rad(deg):
    return torch.tensor(math.radians(deg), dtype=torch.float64)


def test_pool_at_90_is_cva_pooling_and_at_0_is_column_pooling():
    x = torch.randn(2, 5, 12, 12, dtype=torch.float64)
    cva = CVAAttention(5).pool(x)  # (B, C, H, 1): per-row mean over the width
    assert torch.allclose(oriented_pool(x, _rad(90.0)), cva, atol=1e-12)
    col = oriented_pool(x, _rad(0.0))[..., 0]
    assert torch.allclose(col, x.mean(dim=2), atol=1e-12)
    # 180° is the same axis as 0°, read backwards
    assert torch.allclose(oriented_pool(x, _rad(180.0))[..., 0], x.mean(dim=2).flip(-1), atol=1e-9)


def test_pool_of_constant_map_is_constant_at_any_angle():
    x = torch.full((1, 2, 16, 16), 3.5, dtype=torch.float64)
    for deg in (0.0, 17.0, 45.0, 101.0, 150.0):
        assert torch.allclose(oriented_pool(x, _rad(deg)), torch.full((1, 2, 16, 1), 3.5, dtype=torch.float64))


def test_pool_keeps_a_ridge_orthogonal_to_its_axis_sharp():
    # A ridge along t = p·d at 30° pooled at 30° peaks higher than pooled at 90°.
    x, _ = oblique_ridges(1, 30.0, size=32, n_classes=2, noise=0.0, sigma=2.0, jitter=0.0)
    on = oriented_pool(x, torch.tensor(math.radians(30.0)))
    off = oriented_pool(x, torch.tensor(math.radians(90.0)))
    assert float(on.max()) > 0.9 and float(off.max()) < 0.3


def test_unpool_at_90_broadcasts_over_columns():
    a = torch.randn(2, 3, 10, 1, dtype=torch.float64)
    m = oriented_unpool(a, _rad(90.0), 10, 10)
    assert torch.allclose(m, a.expand(-1, -1, -1, 10), atol=1e-12)


@pytest.mark.parametrize("deg", [23.0, 67.0, 128.0])
def test_theta_gradient_matches_finite_differences(deg):
    torch.manual_seed(0)
    layer = SOAAttention(8).double().eval()
    x = torch.randn(2, 8, 12, 12, dtype=torch.float64)
    w = torch.randn(2, 8, 12, 12, dtype=torch.float64)

    def f(t):
        return (layer(x, t) * w).sum()

    theta = _rad(deg).requires_grad_(True)
    f(theta).backward()
    eps = 1e-6
    with torch.no_grad():
        fd = (f(_rad(deg) + eps) - f(_rad(deg) - eps)) / (2 * eps)
    assert abs(float(theta.grad)) > 1e-3
    assert float(theta.grad) == pytest.approx(float(fd), rel=1e-4, abs=1e-6)


def test_theta_of_full_model_gets_a_gradient():
    torch.manual_seed(0)
    m = create_model("facesleuth-soa", 3, **SMALL)
    x = {"onset": torch.rand(2, 3, 32, 32), "apex": torch.rand(2, 3, 32, 32), "aus": torch.zeros(2, 21)}
    m(**x).sum().backward()
    (theta,) = m.theta_parameters()
    assert theta.shape == (4,) and theta.grad is not None and bool((theta.grad != 0).all())


@pytest.mark.parametrize("chain", ["mean", "conv"])
def test_soa_at_90_reproduces_cva_with_shared_weights(chain):
    torch.manual_seed(0)
    # train mode: BatchNorm uses batch statistics, so activations are O(1)
    cva = OrientedAttentionBlock((8, 8, 16, 32), (1, 2, 2, 2), cin=3, mode="cva", chain=chain).double()
    soa = OrientedAttentionBlock((8, 8, 16, 32), (1, 2, 2, 2), cin=3, mode="shared", init_deg=90.0, chain=chain)
    soa = soa.double()
    state = {k: v for k, v in cva.state_dict().items()}
    missing = soa.load_state_dict(state, strict=False)
    assert missing.missing_keys == ["theta"] and not missing.unexpected_keys
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    ref = cva(x).detach()
    assert float(ref.abs().max()) > 0.1
    # θ was initialised in float32 (π/2 rounded: cos θ ≈ -4e-8), hence a sub-micro-pixel offset
    assert torch.allclose(soa(x), ref, atol=1e-5)
    # and at another angle the two differ
    with torch.no_grad():
        soa.theta.fill_(math.radians(60.0))
    assert float((soa(x) - ref).abs().max().detach()) > 1e-2 * float(ref.abs().max())


def test_angles_and_variants():
    ind = create_model("facesleuth-soa", 3, **SMALL)
    sh = create_model("facesleuth-soa-shared", 3, **SMALL)
    fr = create_model("facesleuth-soa-frozen", 3, **SMALL)
    cva = create_model("facesleuth-cva", 3, **SMALL)
    assert ind.angles_deg() == pytest.approx([45.0] * 4)
    assert sh.angles_deg() == pytest.approx([45.0] * 4)
    assert fr.angles_deg() == pytest.approx([0.0] * 4) and fr.theta_parameters() == []
    assert cva.angles_deg() == [90.0] * 4 and cva.theta_parameters() == []
    with torch.no_grad():
        ind.motion.theta.copy_(torch.tensor([math.radians(a) for a in (10.0, 100.0, 190.0, -30.0)]))
    assert ind.angles_deg() == pytest.approx([10.0, 100.0, 10.0, 150.0])
    groups = ind.param_groups(1e-3, 0.1, theta_lr=5e-3)
    assert groups[1]["params"] == [ind.motion.theta] and groups[1]["lr"] == 5e-3
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in ind.parameters())


def test_parameter_overhead_versus_cva():
    n = {
        name: sum(p.numel() for p in create_model(name, 5).parameters() if p.requires_grad)
        for name in ("facesleuth-cva", "facesleuth-soa", "facesleuth-soa-shared", "facesleuth-soa-frozen")
    }
    assert n["facesleuth-soa"] - n["facesleuth-cva"] == 4
    assert n["facesleuth-soa-shared"] - n["facesleuth-cva"] == 1
    assert n["facesleuth-soa-frozen"] == n["facesleuth-cva"]


@pytest.mark.parametrize("target, init", [(45.0, 90.0), (135.0, 90.0), (30.0, 0.0)])
def test_training_moves_theta_to_the_discriminative_axis(target, init):
    angles, losses = train_probe(target, init_deg=init, steps=80, seed=0)
    start, end = axis_distance(angles[0], target), axis_distance(angles[-1], target)
    print(f"target {target}: {angles[0]:.1f} -> {angles[-1]:.1f} deg (loss {losses[0]:.3f} -> {losses[-1]:.3f})")
    assert start >= 30.0
    assert end < 5.0
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]


# ---- the angle is measured, not regularised --------------------------------------------------------


def test_theta_receives_no_weight_decay_at_the_default_settings():
    from mepipe.train.config import TrainConfig
    from mepipe.train.fold import build_optimizer

    torch.manual_seed(0)
    cfg = TrainConfig.create("facesleuth-soa")
    assert cfg.weight_decay > 0  # the other weights are decayed (AdamW 0.6)...
    m = create_model("facesleuth-soa", 3, **SMALL)
    with torch.no_grad():
        m.motion.theta.copy_(torch.tensor([math.radians(a) for a in (20.0, 60.0, 100.0, 150.0)]))
    opt = build_optimizer(m, cfg)
    before_theta = m.motion.theta.detach().clone()
    w = m.head[0].weight
    before_w = w.detach().clone()
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert not torch.equal(w.detach(), before_w)  # ...so a zero-gradient step shrinks them
    assert torch.equal(m.motion.theta.detach(), before_theta)  # but leaves every angle where it was
    (g,) = [g for g in opt.param_groups if any(p is m.motion.theta for p in g["params"])]
    assert g["weight_decay"] == 0.0 and g["lr"] == 5e-3


def test_init_deg_is_a_model_option():
    m = create_model("facesleuth-soa", 3, init_deg=72.0, **SMALL)
    assert m.angles_deg() == pytest.approx([72.0] * 4)
    assert create_model("facesleuth-soa", 3, **SMALL).angles_deg() == pytest.approx([45.0] * 4)


def test_authors_angle_convention_maps_to_the_reported_one():
    """The authors' pooling (rotate the map by the affine [[cos a, sin a], [-sin a, cos a]], then
    average over the width) is sharpest on a ridge map at a = to_authors(θ*)."""
    import torch.nn.functional as F

    from mepipe import angles

    assert angles.from_authors(0.0) == 90.0 and angles.from_authors(72.0) == pytest.approx(18.0)
    assert angles.to_authors(angles.from_authors(33.0)) == pytest.approx(33.0)
    assert angles.mirrored(60.0) == 120.0 and angles.mirrored(90.0) == 90.0 and angles.mirrored(0.0) == 0.0
    target = 30.0
    x, _ = oblique_ridges(1, target, size=48, n_classes=2, noise=0.0, sigma=1.5, jitter=0.0)

    def authors_profile(a_deg):
        a = math.radians(a_deg)
        mat = torch.tensor([[[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0]]])
        grid = F.affine_grid(mat, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False).mean(dim=3).flatten()

    scan = [float(a) for a in range(0, 180, 2)]
    best = max(scan, key=lambda a: float(authors_profile(a).var()))
    assert angles.axis_distance(angles.from_authors(best), target) <= 2.0
    assert angles.axis_distance(best, target) > 20.0  # the raw number would be wrong


def test_fold_angles_are_averaged_as_axes():
    from mepipe import angles
    from mepipe.train.report import _mean_angles

    assert angles.axis_mean([2.0, 178.0]) == pytest.approx(0.0, abs=1e-9)
    assert angles.axis_mean([80.0, 100.0]) == pytest.approx(90.0)
    recs = [{"angles": {"layer 1": [2.0, 10.0]}}, {"angles": {"layer 1": [178.0, 20.0]}}]
    assert _mean_angles(recs)["layer 1"] == pytest.approx([0.0, 15.0], abs=1e-9)
