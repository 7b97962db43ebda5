"""Five-region composition: each tile must come from the right place of the flow maps."""

from __future__ import annotations

import numpy as np
import pytest
from records import sample_meta

from mepipe.errors import StageError
from mepipe.stages.compose import EYE_A, EYE_B, LAYOUTS, NOSE, compose_regions, region_boxes, tile_layout

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
    for layout, sizes in (("patch-grid", (28, 40, 56)), ("quadrants", (28, 40)), ("bands", (28, 29, 40))):
        for size in sizes:
            cover = np.zeros((size, size), int)
            for r0, r1, c0, c1 in tile_layout(size, layout).values():
                cover[r0:r1, c0:c1] += 1
            assert (cover == 1).all(), (layout, size)


def region_map(out: np.ndarray, boxes: dict) -> np.ndarray:
    """The region each output pixel was read from: composed position maps (u = x, v = y) give every
    pixel's source point, which lies in exactly one region's box (the boxes of ``face_landmarks``
    do not overlap). -1 where a pixel lies in no box."""
    names = list(boxes)
    lab = np.full(out.shape[1:], -1)
    for i, name in enumerate(names):
        cx, cy, bw, bh = boxes[name]
        inside = (np.abs(out[0] - cx) <= bw / 2 + 1e-3) & (np.abs(out[1] - cy) <= bh / 2 + 1e-3)
        assert not (inside & (lab >= 0)).any(), "boxes overlap: the test landmarks are wrong"
        lab[inside] = i
    return lab


def blocks(lab: np.ndarray, side: int):
    """``(row, col, set of labels)`` of each ``side x side`` block of ``lab``."""
    n = lab.shape[0] // side
    for r in range(n):
        for c in range(n):
            yield r, c, set(np.unique(lab[r * side : (r + 1) * side, c * side : (c + 1) * side]).tolist())


@pytest.mark.parametrize("size", [28, 56])
def test_patch_grid_puts_each_patch_on_one_region(size):
    flow, strain = position_maps()
    lm = face_landmarks()
    out = compose_regions(flow, strain, lm, size=size, layout="patch-grid")
    boxes = region_boxes(lm, (H, W), size, "patch-grid")
    names = list(boxes)
    lab = region_map(out, boxes)
    assert (lab >= 0).all() and set(np.unique(lab)) == set(range(5))  # the five regions, nothing else
    p = size // 4  # AHMSA-Net's 7x7 patches at 28; the same grid, scaled, at other sizes
    for r, c, regions in blocks(lab, p):
        assert len(regions) == 1, f"patch ({r}, {c}) mixes {[names[i] for i in regions]}"
    first_level = {(r, c): {names[i] for i in regions} for r, c, regions in blocks(lab, 2 * p)}
    assert first_level == {
        (0, 0): {"left_eye"},
        (0, 1): {"right_eye"},
        (1, 0): {"nose", "left_mouth"},
        (1, 1): {"nose", "right_mouth"},
    }
    # the lower blocks hold the nose's half of their own side
    nose = names.index("nose")
    rows = lab[2 * p : 3 * p]
    assert (out[0][2 * p : 3 * p, : 2 * p][rows[:, : 2 * p] == nose] < boxes["nose"][0]).all()
    assert (out[0][2 * p : 3 * p, 2 * p :][rows[:, 2 * p :] == nose] > boxes["nose"][0]).all()


def test_quadrants_put_each_patch_and_each_block_on_one_region():
    flow, strain = position_maps()
    lm = face_landmarks()
    out = compose_regions(flow, strain, lm, layout="quadrants")
    boxes = region_boxes(lm, (H, W), 28, "quadrants")
    names = list(boxes)
    assert "nose" not in names
    lab = region_map(out, boxes)
    assert (lab >= 0).all()
    assert all(len(regions) == 1 for _, _, regions in blocks(lab, 7))
    first_level = {(r, c): {names[i] for i in regions} for r, c, regions in blocks(lab, 14)}
    assert first_level == {(0, 0): {"left_eye"}, (0, 1): {"right_eye"}, (1, 0): {"left_mouth"}, (1, 1): {"right_mouth"}}


def test_bands_layout_is_still_available_and_straddles_the_patches():
    flow, strain = position_maps()
    lm = face_landmarks()
    bands = compose_regions(flow, strain, lm, layout="bands")
    grid = compose_regions(flow, strain, lm)  # the default
    np.testing.assert_array_equal(grid, compose_regions(flow, strain, lm, layout="patch-grid"))
    assert bands.shape == grid.shape and not np.allclose(bands, grid)
    lab = region_map(bands, region_boxes(lm, (H, W), 28, "bands"))
    mixed = [(r, c) for r, c, regions in blocks(lab, 7) if len(regions) > 1]
    assert mixed == [(r, c) for r in (1, 2) for c in range(4)]  # patch rows [7, 14) and [14, 21)
    assert tile_layout(28, "bands") == {
        "left_eye": (0, 10, 0, 14),
        "right_eye": (0, 10, 14, 28),
        "nose": (10, 18, 0, 28),
        "left_mouth": (18, 28, 0, 14),
        "right_mouth": (18, 28, 14, 28),
    }


def test_sizes_off_the_patch_grid_are_refused():
    flow, strain = position_maps()
    for layout in ("patch-grid", "quadrants"):
        with pytest.raises(ValueError, match=f"layout '{layout}'.*multiple of 4.*got 30"):
            compose_regions(flow, strain, face_landmarks(), size=30, layout=layout)
    assert compose_regions(flow, strain, face_landmarks(), size=30, layout="bands").shape == (3, 30, 30)
    with pytest.raises(ValueError, match="unknown layout 'grid'"):
        tile_layout(28, "grid")
    assert LAYOUTS == ("patch-grid", "quadrants", "bands")


def test_each_region_is_read_from_its_box():
    flow, strain = position_maps()
    lm = face_landmarks()
    out = compose_regions(flow, strain, lm)
    assert out.shape == (3, 28, 28) and out.dtype == np.float32
    boxes = region_boxes(lm, (H, W))
    centres = {
        "left_eye": (44, 50 - 0.15 * 40),
        "right_eye": (84, 50 - 0.15 * 40),
        "nose": (64, 72),
        "left_mouth": (50, 92),
        "right_mouth": (78, 92),
    }
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


@pytest.mark.parametrize(
    "bad, match",
    [
        ("nan", "NaN"),
        ("outside", "outside"),
        ("shape", "shape"),
        ("degenerate", "degenerate"),
    ],
)
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


# ---- the recipe key ----------------------------------------------------------------------------


def test_schema_rejects_an_unknown_layout_naming_key_and_file():
    from mepipe.recipe import RecipeError
    from mepipe.recipe_schema import section_defaults, validate_recipe

    assert section_defaults("compose")["layout"] == "patch-grid"
    for layout in LAYOUTS:
        assert validate_recipe({"compose": {"layout": layout}}, "r.toml")["compose"]["layout"] == layout
    with pytest.raises(
        RecipeError,
        match=r"r\.toml: \[compose\] layout = 'patch_grid' is not one of .*"
        r"did you mean 'patch-grid'",
    ):
        validate_recipe({"compose": {"layout": "patch_grid"}}, "r.toml")
    with pytest.raises(RecipeError, match=r"\[compose\] layout must be a string"):
        validate_recipe({"compose": {"layout": 3}}, "r.toml")


def test_a_size_off_the_patch_grid_is_refused_before_work():
    from mepipe.recipe import RecipeError, load_recipe
    from mepipe.runner import build_stages

    with pytest.raises(RecipeError, match=r"\[compose\] layout 'patch-grid' .* multiple of 4"):
        build_stages(load_recipe(overrides={"compose": {"size": 30}}))
    build_stages(load_recipe(overrides={"compose": {"size": 30, "layout": "bands"}}))
    build_stages(load_recipe(overrides={"compose": {"size": 30, "enabled": False}}))  # nothing composed


def test_layout_is_in_the_recipe_hash_and_old_caches_are_not_taken_for_new_ones(tmp_path):
    import copy

    from mepipe.cache import CacheError, CacheWriter, SampleRecord
    from mepipe.recipe import feature_hash, load_recipe, recipe_hash

    new = load_recipe()
    bands = load_recipe(overrides={"compose": {"layout": "bands"}})
    old = copy.deepcopy(new)  # what a cache made before the key existed recorded (its arrays: bands)
    del old["compose"]["layout"]
    hashes = {recipe_hash(new), recipe_hash(bands), recipe_hash(old)}
    assert len(hashes) == 3
    assert len({feature_hash(new), feature_hash(bands), feature_hash(old)}) == 3  # predict tells them apart

    path = tmp_path / "old.h5"
    meta = sample_meta("d", "s", "a", "x")
    w = CacheWriter(path, old, recipe_hash(old), commit_every=1000)
    w.add(SampleRecord("d/s/a", {"ahmsa": np.zeros((3, 28, 28), np.float32)}, meta, np.zeros(21, np.uint8)))
    w.close()
    with pytest.raises(CacheError, match="written with another recipe"):
        CacheWriter(path, new, recipe_hash(new))
