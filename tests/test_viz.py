"""Pictures: flow colours, landmarks, the contact sheet and the plots."""

from __future__ import annotations

import colorsys

import numpy as np
import pandas as pd
import pytest

from mepipe import viz


def _png(path):
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"not a PNG: {path}"
    return img


def _uniform_flow(u, v, shape=(4, 5)):
    return np.stack([np.full(shape, u, np.float32), np.full(shape, v, np.float32)])


@pytest.mark.parametrize("u,v,hue", [(1, 0, 0), (0, 1, 90), (-1, 0, 180), (0, -1, 270), (1, 1, 45), (-1, -1, 225)])
def test_flow_direction_gives_wheel_hue(u, v, hue):
    rgb = viz.flow_to_color(_uniform_flow(u, v), max_mag=np.hypot(u, v))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 5, 3)
    h, s, val = colorsys.rgb_to_hsv(*(rgb[0, 0] / 255.0))
    assert (h * 360 - hue + 180) % 360 - 180 == pytest.approx(0, abs=1.5)
    assert s == pytest.approx(1) and val == pytest.approx(1)


def test_flow_known_colours_zero_black_and_magnitude_scaling():
    assert viz.flow_to_color(_uniform_flow(2, 0), max_mag=2)[0, 0].tolist() == [255, 0, 0]
    assert viz.flow_to_color(_uniform_flow(-2, 0), max_mag=2)[0, 0].tolist() == [0, 255, 255]
    assert not viz.flow_to_color(np.zeros((2, 6, 6), np.float32)).any()
    f = np.zeros((2, 10, 10), np.float32)
    f[0, :5] = 1.0  # half the pixels move 1 px right, the rest 0.5 px right
    f[0, 5:] = 0.5
    rgb = viz.flow_to_color(f, max_mag=1.0)
    assert rgb[0, 0, 0] == 255 and rgb[9, 0, 0] == 128 and not rgb[..., 1:].any()
    # default scale is a robust maximum: one huge outlier does not darken everything
    g = _uniform_flow(0.5, 0, (40, 40))
    g[0, 0, 0] = 1000.0
    assert viz.flow_to_color(g)[5, 5].tolist() == [255, 0, 0]
    with pytest.raises(ValueError):
        viz.flow_to_color(np.zeros((3, 4, 4)))


def test_color_wheel_is_the_legend():
    w = viz.color_wheel(41)
    assert w.shape == (41, 41, 3)
    assert w[20, 40].tolist() == [255, 0, 0]  # right edge: red
    assert w[20, 0].tolist() == [0, 255, 255]  # left edge: cyan
    assert w[20, 20].tolist() == [0, 0, 0]  # centre: no motion
    assert w[0, 0].tolist() == [255, 255, 255]  # outside the disc


def test_draw_landmarks_marks_copy_and_converts_grey():
    img = np.zeros((20, 30, 3), np.uint8)
    out = viz.draw_landmarks(img, np.array([[5.0, 7.0], [25.0, 12.0], [np.nan, 3.0]]), color=(0, 0, 255), radius=1)
    assert not img.any()
    assert out[7, 5].tolist() == [0, 0, 255] and out[12, 25].tolist() == [0, 0, 255]
    assert out[0, 0].tolist() == [0, 0, 0]
    grey = viz.draw_landmarks(np.zeros((10, 10, 1), np.uint8), [[4, 4]], color=(0, 255, 0))
    assert grey.shape == (10, 10, 3) and grey[4, 4].tolist() == [0, 255, 0]


class FakeCache:
    """The reader interface contact_sheet relies on, in memory."""

    def __init__(self, n, side=64, channels=3, seed=0):
        rng = np.random.default_rng(seed)
        self.records = []
        for _ in range(n):
            onset = rng.integers(0, 256, (side, side, channels), dtype=np.uint8)
            flow = rng.normal(0, 1, (2, side, side)).astype(np.float32)
            self.records.append(
                {
                    "onset": onset,
                    "apex": np.roll(onset, 1, axis=1),
                    "flow": flow,
                    "strain": np.abs(flow[0]),
                    "landmarks": rng.uniform(0, side - 1, (2, 478, 2)).astype(np.float32),
                }
            )
        self.meta = pd.DataFrame({"key": [f"synth/s1/{i}" for i in range(n)], "emotion": ["surprise"] * n})

    def __len__(self):
        return len(self.records)

    def read(self, i):
        return self.records[i]


def _panel(sheet, row, col, side):
    zoom, panel, _, _ = viz.sheet_geometry(side, 1)
    y0 = viz.SHEET_HEADER + row * (viz.SHEET_CAPTION + panel + viz.SHEET_PAD) + viz.SHEET_CAPTION
    x0 = viz.SHEET_PAD + col * (panel + viz.SHEET_PAD)
    return sheet[y0 : y0 + panel, x0 : x0 + panel], zoom


def test_contact_sheet_layout_and_pixels(tmp_path):
    cache = FakeCache(5)
    path = viz.contact_sheet(cache, tmp_path / "sheet.png", n=3)
    sheet = _png(path)  # BGR
    _, _, width, height = viz.sheet_geometry(64, 3)
    assert sheet.shape == (height, width, 3)
    # rows are samples 0, 2, 4; panels are the arrays enlarged without resampling
    for row, i in enumerate([0, 2, 4]):
        rec = cache.read(i)
        onset_panel, zoom = _panel(sheet, row, 0, 64)
        assert np.array_equal(onset_panel[::zoom, ::zoom], rec["onset"])
        apex_panel, _ = _panel(sheet, row, 1, 64)
        assert np.array_equal(apex_panel[::zoom, ::zoom], rec["apex"])
        flow_panel, _ = _panel(sheet, row, 2, 64)
        assert np.array_equal(flow_panel[::zoom, ::zoom, ::-1], viz.flow_to_color(rec["flow"]))
        lm_panel, _ = _panel(sheet, row, 4, 64)
        assert (lm_panel != onset_panel).any()  # landmarks drawn


def test_contact_sheet_grey_frames_indices_and_errors(tmp_path):
    cache = FakeCache(3, side=200, channels=1)
    sheet = _png(viz.contact_sheet(cache, tmp_path / "grey.png", indices=[1]))
    _, _, width, height = viz.sheet_geometry(200, 1)
    assert sheet.shape == (height, width, 3)
    panel, zoom = _panel(sheet, 0, 0, 200)
    assert zoom == 1 and np.array_equal(panel[..., 0], cache.read(1)["onset"][..., 0])
    with pytest.raises(IndexError):
        viz.contact_sheet(cache, tmp_path / "x.png", indices=[3])
    with pytest.raises(ValueError):
        viz.contact_sheet(FakeCache(0), tmp_path / "empty.png")


def test_plot_confusion(tmp_path):
    img = _png(
        viz.plot_confusion(
            [[5, 1, 0], [2, 3, 1], [0, 0, 0]], ["happy", "sad", "other"], tmp_path / "cm.png", title="LOSO"
        )
    )
    assert img.shape[2] == 3 and img.shape[1] > img.shape[0] > 200
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20
    with pytest.raises(ValueError):
        viz.plot_confusion(np.eye(2), ["a", "b", "c"], tmp_path / "bad.png")


def test_plot_curves_angles_strain(tmp_path):
    hist = {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.9, 0.8], "val_uf1": [0.2, 0.35, 0.4]}
    curves = _png(viz.plot_curves(hist, tmp_path / "curves.png"))
    assert curves.shape == (320, 840, 3)  # two panels (loss, uf1) of 4.2 x 3.2 in at 100 dpi
    assert viz._curve_groups(hist) == {"loss": ["train_loss", "val_loss"], "uf1": ["val_uf1"]}
    angles = _png(viz.plot_angles({"conv1": [10, 20, 30], "conv2": [5, 6], "fc": [80, 70, 60]}, tmp_path / "a.png"))
    assert angles.shape[1] == 1100
    s = np.zeros((32, 32), np.float32)
    s[10:20, 10:20] = 0.05
    strain = _png(viz.plot_strain(s, tmp_path / "strain.png"))
    assert strain.shape == (400, 460, 3)
    comps = _png(viz.plot_strain(np.stack([s, -s, s / 2]), tmp_path / "comp.png"))
    assert comps.shape == (380, 1200, 3)
    for bad in (
        lambda: viz.plot_curves({}, tmp_path / "e.png"),
        lambda: viz.plot_angles({"x": []}, tmp_path / "e.png"),
        lambda: viz.plot_strain(np.zeros((2, 4, 4)), tmp_path / "e.png"),
    ):
        with pytest.raises(ValueError):
            bad()
