"""Optical strain (Numba kernel) against numpy.gradient and against an analytic field."""

import numpy as np
import pytest

from mepipe.errors import StageError
from mepipe.stages.strain import compute_strain, optical_strain, strain_components, strain_numpy


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 5, 7), (2, 64, 48)])
def test_matches_numpy_reference(shape):
    flow = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    comp, mag = strain_numpy(flow)
    np.testing.assert_allclose(strain_components(flow), comp, atol=1e-6)
    np.testing.assert_allclose(optical_strain(flow), mag, atol=1e-6)


def test_affine_field_is_exact():
    # u = a x + b y, v = c x + d y: strain is constant, also on the border (one-sided differences)
    a, b, c, d = 0.02, -0.01, 0.03, 0.05
    yy, xx = np.mgrid[0:16, 0:20].astype(np.float32)
    flow = np.stack([a * xx + b * yy, c * xx + d * yy])
    comp = strain_components(flow)
    np.testing.assert_allclose(comp[0], a, atol=1e-6)
    np.testing.assert_allclose(comp[1], d, atol=1e-6)
    np.testing.assert_allclose(comp[2], 0.5 * (b + c), atol=1e-6)
    np.testing.assert_allclose(optical_strain(flow), np.sqrt(a * a + d * d + 2 * (0.5 * (b + c)) ** 2), atol=1e-6)


def test_rigid_translation_has_no_strain():
    flow = np.ones((2, 10, 10), np.float32) * np.array([1.5, -0.7], np.float32)[:, None, None]
    assert np.abs(optical_strain(flow)).max() == 0


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        strain_components(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="2x2"):
        strain_components(np.zeros((2, 1, 4), np.float32))
    with pytest.raises(StageError) as e:
        compute_strain(np.zeros((4, 4), np.float32))
    assert e.value.stage == "strain"
