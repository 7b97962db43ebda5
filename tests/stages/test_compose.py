"""Five-region composition: each tile must come from the right place of the flow maps."""
from __future__ import annotations

import numpy as np
import pytest

from mepipe.errors import StageError
from mepipe.stages.compose import EYE_A, EYE_B, NOSE, compose_regions, region_boxes, tile_layout

H = W = 128


def position_maps():
    """u = x, v = y, strain = x + 1000 y: every value says where it was read."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([xx, yy]), xx + 1000.0 * yy


def face_landmarks(eye_l=(44, 50), eye_r=(84, 50), nose=(64, 72), mouth_l=(50, 92), mouth_r=(78, 92)):
    lm = np.full((478, 2), 64.0, dtype=np.float32)
    for i in EYE_A:
        lm[i] = eye_l
    for i in EYE_B:
        lm[i] = eye_r
    for i in NOSE:
        lm[i] = nose
    lm[61], lm[291] = mouth_l, mouth_r
    return lm


def test_layout_covers_the_output_once():
    for size in (28, 29, 40):
        cover = np.zeros((size, size), int)
        for r0, r1, c0, c1 in tile_layout(size).values():
            cover[r0:r1, c0:c1] += 1
        assert (cover == 1).all()


def test_each_region_is_read_from_its_box():
    flow, strain = position_maps()
    lm = face_landmarks()
    out = compose_regions(flow, strain, lm)
    assert out.shape == (3, 28, 28) and out.dtype == np.float32
    boxes = region_boxes(lm, (H, W))
    centres = {"left_eye": (44, 50 - 0.15 * 40), "right_eye": (84, 50 - 0.15 * 40), "nose": (64, 72),
               "left_mouth": (50, 92), "right_mouth": (78, 92)}
    for name, (r0, r1, c0, c1) in tile_layout(28).items():
        u, v, s = out[0, r0:r1, c0:c1], out[1, r0:r1, c0:c1], out[2, r0:r1, c0:c1]
        cx, cy, bw, bh = boxes[name]
        assert (cx, cy) == pytest.approx(centres[name])
        assert float(u.mean()) == pytest.approx(cx, abs=0.05)
        assert float(v.mean()) == pytest.approx(cy, abs=0.05)
        # values stay inside the box, and increase left->right and top->bottom
        assert u.min() >= cx - bw / 2 - 1e-3 and u.max() <= cx + bw / 2 + 1e-3
        assert v.min() >= cy - bh / 2 - 1e-3 and v.max() <= cy + bh / 2 + 1e-3
        assert (np.diff(u, axis=1) > 0).all() and (np.diff(v, axis=0) > 0).all()
        np.testing.assert_allclose(s, u + 1000.0 * v, rtol=1e-5)


def test_left_and_right_follow_the_image_not_the_index():
    flow, strain = position_maps()
    a = compose_regions(flow, strain, face_landmarks())
    swapped = face_landmarks(eye_l=(84, 50), eye_r=(44, 50), mouth_l=(78, 92), mouth_r=(50, 92))
    b = compose_regions(flow, strain, swapped)
    np.testing.assert_array_equal(a, b)


def test_regions_scale_with_the_face():
    flow, strain = position_maps()
    small = face_landmarks(eye_l=(54, 50), eye_r=(74, 50))  # eyes 20 px apart instead of 40
    out = compose_regions(flow, strain, small)
    r0, r1, c0, c1 = tile_layout(28)["left_eye"]
    span = out[0, r0:r1, c0:c1].max() - out[0, r0:r1, c0:c1].min()
    assert 0.6 * 16 < span < 16  # box width 0.8 * 20 px


def test_border_reads_zero_motion():
    flow, strain = position_maps()
    flow = flow + 1.0  # no zeros inside the image
    lm = face_landmarks(eye_l=(2, 50), eye_r=(42, 50))
    out = compose_regions(flow, strain, lm)
    r0, r1, c0, c1 = tile_layout(28)["left_eye"]
    assert (out[0, r0:r1, c0] == 0).all()  # the box starts 16 px left of the image


def test_other_sizes():
    flow, strain = position_maps()
    assert compose_regions(flow, strain, face_landmarks(), size=40).shape == (3, 40, 40)
    with pytest.raises(ValueError):
        compose_regions(flow, strain, face_landmarks(), size=4)


@pytest.mark.parametrize("bad, match", [
    ("nan", "NaN"),
    ("outside", "outside"),
    ("shape", "shape"),
    ("degenerate", "degenerate"),
])
def test_unusable_landmarks_raise_stage_error(bad, match):
    flow, strain = position_maps()
    lm = face_landmarks()
    if bad == "nan":
        lm[200, 0] = np.nan
    elif bad == "outside":
        lm[61] = (-3.0, 92.0)
    elif bad == "shape":
        lm = lm[:100]
    else:
        lm = face_landmarks(eye_l=(64, 50), eye_r=(65, 50))
    with pytest.raises(StageError, match=match) as e:
        compose_regions(flow, strain, lm)
    assert e.value.stage == "compose"


def test_bad_maps_raise_value_error():
    flow, strain = position_maps()
    with pytest.raises(ValueError, match="flow"):
        compose_regions(flow[0], strain, face_landmarks())
    with pytest.raises(ValueError, match="strain"):
        compose_regions(flow, strain[:10], face_landmarks())
