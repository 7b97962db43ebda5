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
    flow = np.stack([0.3 * xx ** 1.5 + 0.1 * yy * xx, 0.2 * yy ** 2 - 0.05 * xx * yy]).astype(np.float32)
    flow += rng.normal(0, 0.01, flow.shape).astype(np.float32)
    comp, mag = strain_numpy(flow)
    flipped = hflip({"flow": flow, "strain_components": comp.astype(np.float32), "strain": mag[None].astype(np.float32)})
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
