"""Apex landmarks moved by the flow (``align.apex_landmarks = "flow"``) against the synthetic ground truth."""

import numpy as np
import pytest

from mepipe.stages.align import Aligner, apply_affine, move_points


def test_move_points_follows_a_known_field():
    h, w = 40, 50
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([0.02 * xx + 0.5, -0.03 * yy + 0.1 * np.ones_like(xx)])  # affine: bilinear is exact
    pts = np.array([[3.25, 7.5], [20.0, 10.0], [48.9, 38.1]], np.float32)
    got = move_points(pts, flow)
    want = pts + np.stack([0.02 * pts[:, 0] + 0.5, -0.03 * pts[:, 1] + 0.1], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # past the border the edge value is used
    np.testing.assert_allclose(move_points(np.array([[-5.0, 0.0]]), flow), [[-5.0 + 0.5, 0.1]], atol=1e-5)
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        move_points(pts, flow[0])


def test_apex_landmarks_mode_is_checked():
    with pytest.raises(ValueError, match="apex_landmarks"):
        Aligner({"apex_landmarks": "dlib"})


def _sample_gt(gt, pts):
    import cv2

    return np.stack(
        [
            cv2.remap(gt[k], pts[None, :, 0].astype(np.float32), pts[None, :, 1].astype(np.float32), cv2.INTER_LINEAR)[
                0
            ]
            for k in (0, 1)
        ],
        axis=1,
    )


def test_cached_apex_landmarks_track_the_true_motion(synth_cache):
    """Per sample, over the landmarks that move (> 25 % of the peak): the cached apex landmarks
    (onset's moved by the flow) are within 0.3 px of where the ground truth puts them, and closer
    than MediaPipe fitted again on the apex frame."""
    from mepipe.cache import open_cache
    from mepipe.frames import read_frames
    from mepipe.stages.crop import FaceCropper

    refit = Aligner({"apex_landmarks": "mediapipe"})
    cropper = FaceCropper()
    errs, mp_errs, still = [], [], []
    with open_cache(synth_cache) as c:
        assert len(c), "empty cache"
        for i in range(len(c)):
            rec = c.read(i, fields=["landmarks", "transform"])
            m = rec["transform"][0]
            inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
            src = c.meta.source[i]
            gt = np.load(f"{src}/gt_flow.npy")
            on_frame = apply_affine(inv, rec["landmarks"][0].astype(np.float64))
            d = _sample_gt(gt, on_frame)
            mag = np.linalg.norm(d, axis=1)
            moving = mag > 0.25 * mag.max()
            truth = apply_affine(m, on_frame + d)
            onset, apex = read_frames(src, [int(c.meta.onset[i]), int(c.meta.apex[i])])
            fit = refit.align(onset, apex, cropper.detect(onset).box)
            errs.append(np.linalg.norm(rec["landmarks"][1] - truth, axis=1)[moving].mean())
            mp_errs.append(np.linalg.norm(fit.landmarks[1] - truth, axis=1)[moving].mean())
            still.append(np.linalg.norm(rec["landmarks"][0] - truth, axis=1)[moving].mean())
    errs, mp_errs, still = map(np.array, (errs, mp_errs, still))
    assert errs.max() < 0.3, errs
    assert (errs < 0.5 * still).all(), (errs, still)  # the motion is captured, not just the onset copied
    assert errs.mean() < mp_errs.mean(), (errs, mp_errs)
