"""Horizontal flip of model inputs: known values, and consistency with the physics of flow/strain."""

import numpy as np
import pytest
import torch

from mepipe.stages.strain import strain_numpy
from mepipe.train.augment import AugmentError, check_flippable, hflip, hflip_batch


def test_flow_flip_mirrors_and_negates_u():
    u = np.arange(12, dtype=np.float32).reshape(3, 4)  # u[y, x] = 4y + x
    v = 100 + np.arange(12, dtype=np.float32).reshape(3, 4)
    out = hflip({"flow": np.stack([u, v])})["flow"]
    assert out[0].tolist() == [[-3, -2, -1, -0], [-7, -6, -5, -4], [-11, -10, -9, -8]]
    assert out[1].tolist() == [[103, 102, 101, 100], [107, 106, 105, 104], [111, 110, 109, 108]]


def test_rightward_motion_becomes_leftward():
    # a patch moving right by 2 px at the left of the image: after the flip it moves left, on the right
    flow = np.zeros((2, 8, 8), np.float32)
    flow[0, 2:4, 1:3] = 2.0
    f = hflip({"flow": flow})["flow"]
    assert np.all(f[0, 2:4, 5:7] == -2.0)
    assert np.count_nonzero(f) == 4


def test_strain_components_flip_matches_strain_of_flipped_flow():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:12, 0:10].astype(np.float32)
    flow = np.stack([0.3 * xx**1.5 + 0.1 * yy * xx, 0.2 * yy**2 - 0.05 * xx * yy]).astype(np.float32)
    flow += rng.normal(0, 0.01, flow.shape).astype(np.float32)
    comp, mag = strain_numpy(flow)
    flipped = hflip(
        {"flow": flow, "strain_components": comp.astype(np.float32), "strain": mag[None].astype(np.float32)}
    )
    comp_f, mag_f = strain_numpy(flipped["flow"])
    np.testing.assert_allclose(flipped["strain_components"], comp_f, atol=1e-4)
    np.testing.assert_allclose(flipped["strain"][0], mag_f, atol=1e-4)


def test_images_ahmsa_and_aus():
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ahmsa = np.stack([img[0], img[1], img[0] + 50])
    aus = np.array([1, 0, 1], np.float32)
    out = hflip({"apex": img, "ahmsa": ahmsa, "aus": aus})
    np.testing.assert_array_equal(out["apex"], img[..., ::-1])
    np.testing.assert_array_equal(out["ahmsa"][0], -img[0][:, ::-1])  # u channel negated
    np.testing.assert_array_equal(out["ahmsa"][1:], ahmsa[1:, :, ::-1])
    np.testing.assert_array_equal(out["aus"], aus)  # the AU vector is side-free
    assert hflip(hflip({"ahmsa": ahmsa}))["ahmsa"].tolist() == ahmsa.tolist()  # an involution


def test_batch_flip_touches_masked_samples_only():
    x = torch.randn(3, 2, 4, 5)
    aus = torch.tensor([[1.0, 0.0]] * 3)
    out = hflip_batch({"flow": x, "aus": aus}, torch.tensor([True, False, True]))
    ref = hflip({"flow": x[0].numpy()})["flow"]
    np.testing.assert_array_equal(out["flow"][0].numpy(), ref)
    assert torch.equal(out["flow"][1], x[1])
    assert torch.equal(out["flow"][2, 1], torch.flip(x[2, 1], dims=(-1,)))
    assert torch.equal(out["aus"], aus)


def test_unknown_field_is_an_error():
    with pytest.raises(AugmentError, match="landmarks"):
        check_flippable(["flow", "landmarks"])
    with pytest.raises(AugmentError, match="landmarks"):
        hflip({"landmarks": np.zeros((2, 478, 2))})


def test_ahmsa_flip_equals_composition_of_the_mirrored_face():
    pytest.importorskip("cv2")
    from mepipe.stages.compose import compose_regions

    rng = np.random.default_rng(0)
    h = w = 64
    lm = np.full((478, 2), 32.0)
    for i in (33, 133, 159, 145):
        lm[i] = [20 + rng.random(), 22 + rng.random()]
    for i in (263, 362, 386, 374):
        lm[i] = [43 + rng.random(), 23 + rng.random()]
    for i in (1, 98, 327):
        lm[i] = [32.3 + rng.random(), 36]
    lm[61], lm[291] = [24.2, 48.1], [41.3, 47.7]
    flow = rng.normal(size=(2, h, w)).astype(np.float32)
    strain = rng.random((h, w)).astype(np.float32)
    composed = compose_regions(flow, strain, lm)
    mirrored_lm = lm.copy()
    mirrored_lm[:, 0] = w - 1 - lm[:, 0]
    f = hflip({"flow": flow, "strain": strain[None]})
    expected = compose_regions(f["flow"], f["strain"][0], mirrored_lm)
    np.testing.assert_allclose(hflip({"ahmsa": composed})["ahmsa"], expected, atol=1e-5)


# ---- the authors' augmentation: flip, rotation, shift, vectors turned with the image ----------------


def _blob(size, c, sigma=2.0):
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    return torch.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * sigma**2))


def _centroid(img):
    yy, xx = torch.meshgrid(
        torch.arange(img.shape[-2], dtype=img.dtype), torch.arange(img.shape[-1], dtype=img.dtype), indexing="ij"
    )
    w = img.clamp_min(0)
    return torch.stack([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


@pytest.mark.parametrize(
    "flip, angle, shift", [(True, 0.0, (0, 0)), (False, 30.0, (0, 0)), (False, -75.0, (2, -3)), (True, 20.0, (-4, 1))]
)
def test_flow_is_transformed_with_the_image(flip, angle, shift):
    """A feature at c in the onset sits at c + d in the apex, and the flow is d: after the same
    transform of onset, apex and flow, the flow at the feature still points from its onset position
    to its apex position."""
    from mepipe.train.augment import affine_batch

    size, c, d = 48, torch.tensor([20.0, 27.0], dtype=torch.float64), torch.tensor([3.0, -1.5], dtype=torch.float64)
    onset = _blob(size, c)[None, None].repeat(1, 3, 1, 1)
    apex = _blob(size, c + d)[None, None].repeat(1, 3, 1, 1)
    flow = d.view(1, 2, 1, 1).expand(1, 2, size, size).clone()
    out = affine_batch(
        {"onset": onset, "apex": apex, "flow": flow}, torch.tensor([flip]), torch.tensor([angle]), torch.tensor([shift])
    )
    c0, c1 = _centroid(out["onset"][0, 0]), _centroid(out["apex"][0, 0])
    x, y = (int(round(float(v))) for v in c0)
    moved = c1 - c0
    assert torch.allclose(out["flow"][0, :, y, x], moved, atol=0.05), (out["flow"][0, :, y, x], moved)
    assert float((moved - d).abs().max()) > 0.5 or (not flip and angle == 0)  # the motion did turn


def test_affine_flip_equals_the_exact_hflip():
    from mepipe.train.augment import affine_batch

    g = torch.Generator().manual_seed(0)
    x = {
        "flow": torch.randn(2, 2, 8, 10, generator=g),
        "strain_components": torch.randn(2, 3, 8, 10, generator=g),
        "apex": torch.rand(2, 3, 8, 10, generator=g),
        "aus": torch.ones(2, 21),
    }
    a = affine_batch(x, torch.tensor([True, True]), torch.zeros(2), torch.zeros(2, 2))
    h = hflip_batch(x, torch.tensor([True, True]))
    for k in x:
        assert torch.allclose(a[k], h[k], atol=1e-6), k


def test_rotation_turns_the_strain_tensor():
    """A linear flow u = G p has strain sym(G); rotated by A it is u' = A G Aᵀ p', strain sym(A G Aᵀ)."""
    from mepipe.train.augment import affine_batch, affine_matrices

    G = torch.tensor([[0.3, 0.1], [-0.2, 0.05]], dtype=torch.float64)
    E = (G + G.T) / 2
    comp = torch.tensor([E[0, 0], E[1, 1], E[0, 1]]).view(1, 3, 1, 1).expand(1, 3, 16, 16).clone()
    out = affine_batch({"strain_components": comp}, torch.tensor([False]), torch.tensor([40.0]), torch.zeros(1, 2))
    A = affine_matrices(torch.tensor([False]), torch.tensor([40.0]), torch.zeros(1, 2))[0][0]
    Gp = A @ G @ A.T
    want = (Gp + Gp.T) / 2
    got = out["strain_components"][0, :, 8, 8]
    assert torch.allclose(got, torch.stack([want[0, 0], want[1, 1], want[0, 1]]), atol=1e-9)
    assert not torch.allclose(got, comp[0, :, 8, 8], atol=1e-3)


def test_paper_augmentation_draws_within_the_authors_ranges():
    from mepipe.train.augment import PAPER_AUGMENT, affine_batch, paper_batch

    assert PAPER_AUGMENT == {"flip_p": 0.5, "max_rotation_deg": 3.0, "padding_frac": 15 / 224}
    x = {"onset": torch.rand(64, 1, 32, 32, dtype=torch.float64)}
    a = paper_batch(x, torch.Generator().manual_seed(3))
    b = paper_batch(x, torch.Generator().manual_seed(3))
    assert torch.equal(a["onset"], b["onset"])  # one draw per seed
    # each output is one of the flip/rotation/shift transforms of its input: undo a flip and compare
    # against unflipped rotations: with flips some samples match only when mirrored
    plain = affine_batch(x, torch.zeros(64, dtype=torch.bool), torch.zeros(64), torch.zeros(64, 2))
    assert torch.allclose(plain["onset"], x["onset"], atol=1e-6)
    nf = paper_batch(x, torch.Generator().manual_seed(3), flip=False)
    assert not torch.equal(nf["onset"], x["onset"])


@pytest.mark.parametrize(
    "model, augment, ok",
    [
        ("facesleuth-soa", "hflip", False),
        ("facesleuth-soa", "paper", False),
        ("facesleuth-soa-shared", "hflip", False),
        ("facesleuth-soa", "paper-noflip", True),
        ("facesleuth-cva", "paper", True),
        ("facesleuth-cva", "hflip", True),
        ("facesleuth-soa-frozen", "hflip", True),
    ],
)
def test_flips_are_refused_for_a_learned_orientation(model, augment, ok):
    from mepipe.train.config import TrainConfig, TrainError

    if ok:
        assert TrainConfig.create(model, augment=augment).augment == augment
    else:
        with pytest.raises(TrainError, match="paper-noflip"):
            TrainConfig.create(model, augment=augment)


def test_frozen_oblique_axis_refuses_flips_too():
    from mepipe.train.config import TrainConfig, TrainError

    with pytest.raises(TrainError, match="fixed axis 30"):
        TrainConfig.create("facesleuth-soa-frozen", augment="hflip", model_kwargs={"init_deg": 30})
    TrainConfig.create("facesleuth-soa-frozen", augment="hflip", model_kwargs={"init_deg": 90})


def test_cli_refuses_flips_for_soa_before_any_work(tmp_path, capsys):
    from mepipe.cli import main

    rc = main(
        [
            "train",
            str(tmp_path / "no-such-cache.h5"),
            "--model",
            "facesleuth-soa",
            "--augment",
            "hflip",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "horizontal flip turns an axis" in err
    assert not (tmp_path / "run").exists()
