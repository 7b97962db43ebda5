"""dlib crop and MediaPipe alignment on real faces."""

import numpy as np
import pytest

from mepipe.errors import StageError
from mepipe.frames import read_frames, read_image
from mepipe.recipe_schema import section_defaults
from mepipe.stages.align import (
    STABLE_POINTS,
    Aligner,
    apply_affine,
    compose_affine,
    eye_centres,
    invert_affine,
    similarity_transform,
    template_points,
)
from mepipe.stages.crop import FaceCropper, square_box

FRONTAL = ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "single_face.jpg"]


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper()


@pytest.fixture(scope="module")
def aligner():
    return Aligner()


def test_similarity_transform_recovers_known_map():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (6, 2))
    ang, s, t = 0.3, 1.7, np.array([5.0, -3.0])
    r = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    m = similarity_transform(src, src @ r.T + t)
    np.testing.assert_allclose(m, np.hstack([r, t[:, None]]), atol=1e-9)


def test_square_box():
    x0, y0, side = square_box(np.array([[10, 20], [30, 60]], np.float32), 0.25)
    assert side == pytest.approx(60) and (x0 + side / 2, y0 + side / 2) == pytest.approx((20, 40))


@pytest.mark.parametrize("name", FRONTAL)
def test_aligned_eyes_on_template(faces_dir, cropper, aligner, name):
    img = read_image(faces_dir / name)
    crop = cropper.detect(img)
    assert crop.n_faces == 1 and crop.landmarks68 is None  # box from the detector: no 68-point fit
    res = aligner.align(img, img, crop.box)
    size = section_defaults("align")["size"]
    assert res.onset.shape == (size, size, 3) and res.landmarks.shape == (2, 478, 2)
    t = template_points(section_defaults("align"))
    want = np.stack([t[[0, 1]].mean(0), t[[2, 3]].mean(0)])  # midpoints of each eye's corners
    err = np.linalg.norm(eye_centres(res.landmarks[0]) - want, axis=1)
    assert err.max() < 3.0, err
    # stable points land on the template (least-squares residual, pixels)
    resid = np.linalg.norm(res.landmarks[0][list(STABLE_POINTS)] - t, axis=1)
    assert resid.mean() < 2.0, resid
    # onset mode: the same frame twice gives identical aligned frames (no false motion)
    assert np.array_equal(res.onset, res.apex)


def _iou(a, b):
    ax0, ay0, sa = a
    bx0, by0, sb = b
    w = max(0.0, min(ax0 + sa, bx0 + sb) - max(ax0, bx0))
    h = max(0.0, min(ay0 + sa, by0 + sb) - max(ay0, by0))
    return w * h / (sa * sa + sb * sb - w * h)


@pytest.mark.parametrize(
    "name", ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "single_face.jpg"]
)
def test_detector_box_matches_landmark_box(faces_dir, name):
    """The default box, predicted from dlib's rectangle, covers the same face square as the box
    around dlib's 68 landmarks (which loads the 100 MB predictor)."""
    img = read_image(faces_dir / name)
    fast = FaceCropper().detect(img)
    full = FaceCropper({"box": "landmarks68"}).detect(img)
    assert full.landmarks68.shape == (68, 2) and fast.landmarks68 is None
    assert full.box == pytest.approx(square_box(full.landmarks68, 0.25))
    # same square up to the spread of faces against dlib's rectangle (measured: size 0.79-1.17, a
    # turned face's centre 0.25 rectangle widths to the side)
    assert 0.75 < fast.box[2] / full.box[2] < 1.35, (fast.box, full.box)
    assert _iou(fast.box, full.box) > 0.5, (fast.box, full.box)
    # every landmark lies inside the detector box
    x0, y0, side = fast.box
    pts = full.landmarks68
    assert (pts[:, 0] > x0).all() and (pts[:, 0] < x0 + side).all(), name
    assert (pts[:, 1] > y0).all() and (pts[:, 1] < y0 + side).all(), name


def test_crop_box_mode_is_checked():
    with pytest.raises(ValueError, match=r"\[crop\] box"):
        FaceCropper({"box": "mediapipe"})


def test_register_mode_cancels_head_motion(faces_dir, cropper):
    import cv2

    img = read_image(faces_dir / "single_face.jpg")
    h, w = img.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 6.0, 1.03)
    rot[:, 2] += (15, -10)
    moved = cv2.warpAffine(img, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
    box = cropper.detect(img).box
    on = Aligner({"mode": "onset", "apex_landmarks": "mediapipe"}).align(img, moved, box)
    reg = Aligner({"mode": "register"}).align(img, moved, box)
    idx = list(STABLE_POINTS)

    def drift(r):
        return np.linalg.norm(r.landmarks[1][idx] - r.landmarks[0][idx], axis=1).mean()

    assert drift(on) > 4.0, drift(on)  # the head moved
    assert drift(reg) < 0.15 * drift(on), (drift(reg), drift(on))  # registration removed it
    # the stored apex transform maps the apex frame's own landmarks consistently
    lm_frame = Aligner().landmarks(moved, box, "apex")
    np.testing.assert_allclose(apex := apply_affine(reg.apex_matrix, lm_frame), reg.landmarks[1], atol=1e-3)
    assert apex.shape == (478, 2)


def test_multi_face_takes_largest(faces_dir, cropper):
    img = read_image(faces_dir / "multi_face.jpg")
    crop = cropper.detect(img)
    assert crop.n_faces >= 2
    with pytest.raises(StageError, match="faces found"):
        FaceCropper({"multi_face": "fail"}).detect(img)


def test_no_face_video_fails_cleanly(faces_dir, cropper):
    (frame,) = read_frames(faces_dir / "no_face.mp4", [0])
    with pytest.raises(StageError) as e:
        cropper.detect(frame)
    assert e.value.stage == "crop" and "no face" in e.value.reason


def test_face_too_small(faces_dir):
    import cv2

    img = cv2.resize(read_image(faces_dir / "single_face.jpg"), None, fx=0.5, fy=0.5)
    with pytest.raises(StageError, match="face too small"):
        FaceCropper({"min_face": 200, "upsample": 1}).detect(img)


@pytest.mark.slow
def test_cnn_detector_agrees_with_hog(faces_dir):
    import cv2

    img = cv2.resize(read_image(faces_dir / "single_face.jpg"), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    hog = FaceCropper({"detector": "hog", "upsample": 1, "box": "landmarks68"}).detect(img)
    cnn = FaceCropper({"detector": "cnn", "upsample": 0, "box": "landmarks68"}).detect(img)
    # the box comes from the 68 landmarks, so both detectors give nearly the same crop
    assert np.abs(np.array(hog.box) - np.array(cnn.box)).max() < 4, (hog.box, cnn.box)
    # from each detector's own rectangle (calibrated per detector), the boxes agree to about 10 %
    hog = FaceCropper({"detector": "hog", "upsample": 1}).detect(img)
    cnn = FaceCropper({"detector": "cnn", "upsample": 0}).detect(img)
    assert np.abs(np.array(hog.box) - np.array(cnn.box)).max() < 0.1 * hog.box[2], (hog.box, cnn.box)
    with pytest.raises(ValueError, match=r"\[crop\] detector = 'yolo' is not one of"):
        FaceCropper({"detector": "yolo"})  # refused when built, before any frame is read


def test_large_frames_detect_on_a_shrunk_copy(faces_dir, cropper, aligner):
    import cv2

    img = read_image(faces_dir / "single_face.jpg")  # 572 px: detected as is
    big = cv2.resize(img, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)  # 1430 px: shrunk to 640 to detect
    a = np.array(cropper.detect(img).box)
    b = np.array(cropper.detect(big).box) / 2.5
    # the rectangle of the shrunk copy is scaled back; HOG's rectangles come in pyramid steps
    # (about 1.2x), so the boxes agree to about a tenth of their side ...
    assert np.abs(a - b).max() < 0.15 * a[2], (a, b)
    # ... and the alignment, which MediaPipe's landmarks decide, does not depend on that
    ra = aligner.align(img, img, tuple(a))
    rb = aligner.align(img, img, tuple(b))
    drift = np.linalg.norm(eye_centres(ra.landmarks[0]) - eye_centres(rb.landmarks[0]), axis=1)
    assert drift.max() < 1.0, drift


def _boxes(det, grey):
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in det(grey, 1)]


@pytest.mark.slow
def test_saved_face_detector_is_dlibs(faces_dir, tmp_path, monkeypatch):
    """The detector loaded from mepipe's cache file finds exactly the boxes dlib's own finds, on
    every real face image; a damaged file is rebuilt; an empty MEPIPE_CACHE_DIR keeps nothing."""
    import cv2
    import dlib

    from mepipe.resources import frontal_face_detector

    monkeypatch.setenv("MEPIPE_CACHE_DIR", str(tmp_path))
    first = frontal_face_detector()  # built by dlib, saved
    files = list(tmp_path.glob("dlib-*-frontal_face_detector.svm"))
    assert len(files) == 1 and files[0].stat().st_size > 10_000
    loaded = frontal_face_detector()  # from the file
    ref = dlib.get_frontal_face_detector()
    images = sorted(faces_dir.glob("*.jpg"))
    assert len(images) >= 5
    found = 0
    for p in images:
        grey = cv2.cvtColor(read_image(p), cv2.COLOR_BGR2GRAY)
        want = _boxes(ref, grey)
        assert _boxes(loaded, grey) == want, p.name
        assert _boxes(first, grey) == want, p.name
        found += len(want)
    assert found >= 5  # the comparison covered real detections

    files[0].write_bytes(b"not a detector")
    grey = cv2.cvtColor(read_image(faces_dir / "single_face.jpg"), cv2.COLOR_BGR2GRAY)
    assert _boxes(frontal_face_detector(), grey) == _boxes(ref, grey)
    assert files[0].stat().st_size > 10_000  # rewritten

    off = tmp_path / "off"
    monkeypatch.setenv("MEPIPE_CACHE_DIR", "")
    assert _boxes(frontal_face_detector(), grey) == _boxes(ref, grey)
    assert not off.exists()


def test_unwritable_cache_dir_still_detects(faces_dir, tmp_path, monkeypatch):
    import cv2

    from mepipe.resources import frontal_face_detector

    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MEPIPE_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    grey = cv2.cvtColor(read_image(faces_dir / "single_face.jpg"), cv2.COLOR_BGR2GRAY)
    assert len(_boxes(frontal_face_detector(), grey)) == 1


def test_invert_affine_against_the_matrix_inverse():
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = rng.normal(size=(2, 3)) * [[3, 3, 50], [3, 3, 50]]
        inv = invert_affine(m)
        np.testing.assert_allclose(inv, np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(compose_affine(inv, m), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        invert_affine(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0]]))
