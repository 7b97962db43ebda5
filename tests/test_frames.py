"""Frame listing and reading: numeric order, folders and videos, clear errors."""

import cv2
import numpy as np
import pytest

from mepipe.frames import FrameError, frame_number, list_frame_files, read_frames, read_image


def _write(folder, names, shape=(20, 30, 3)):
    folder.mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(names):
        img = np.full(shape, k * 10, np.uint8)
        assert cv2.imwrite(str(folder / n), img)


def test_numeric_sort_not_lexical(tmp_path):
    _write(tmp_path, ["img10.jpg", "img9.jpg", "img100.png", "img1.bmp"])
    names = [p.name for p in list_frame_files(tmp_path)]
    assert names == ["img1.bmp", "img9.jpg", "img10.jpg", "img100.png"]
    assert frame_number("006_05562.jpg") == 5562 and frame_number("reg_img46.jpg") == 46


def test_read_frames_by_position(tmp_path):
    _write(tmp_path, [f"img{n}.png" for n in (46, 47, 48, 50)])
    # png values were written in file-name order: 0, 10, 20, 30
    a, b = read_frames(tmp_path, [0, 3])
    assert a.shape == (20, 30, 3) and a[0, 0, 0] == 0 and b[0, 0, 0] == 30


def test_video_frames_match_sequential_decode(faces_dir):
    video = faces_dir / "single_face.mp4"
    cap = cv2.VideoCapture(str(video))
    ref = []
    while len(ref) < 6:
        ok, f = cap.read()
        assert ok
        ref.append(f)
    cap.release()
    f1, f5 = read_frames(video, [1, 5])
    assert np.array_equal(f1, ref[1]) and np.array_equal(f5, ref[5])
    with pytest.raises(FrameError, match="past the last frame"):
        read_frames(video, [0, 10_000])


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FrameError, match="not found"):
        list_frame_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameError, match="no image frames"):
        list_frame_files(tmp_path / "empty")
    _write(tmp_path / "f", ["img1.jpg", "img2.jpg"])
    with pytest.raises(FrameError, match=r"past the last frame \(1\)"):
        read_frames(tmp_path / "f", [0, 2])
    good = (tmp_path / "f" / "img2.jpg").read_bytes()
    (tmp_path / "f" / "img2.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(FrameError, match="img2.jpg"):
        read_image(tmp_path / "f" / "img2.jpg")


def test_grey_and_rgba_become_bgr(tmp_path):
    grey = np.arange(200, dtype=np.uint8).reshape(10, 20)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    rgba = np.dstack([np.full((10, 20), c, np.uint8) for c in (10, 20, 30, 255)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    g = read_image(tmp_path / "g.png")
    a = read_image(tmp_path / "a.png")
    assert g.shape == (10, 20, 3) and np.array_equal(g[:, :, 1], grey)
    assert a.shape == (10, 20, 3) and tuple(a[0, 0]) == (10, 20, 30)


def test_size_change_mid_sequence(tmp_path):
    _write(tmp_path, ["img1.png", "img2.png"])
    cv2.imwrite(str(tmp_path / "img3.png"), np.zeros((21, 30, 3), np.uint8))
    with pytest.raises(FrameError, match="img3.png"):
        read_frames(tmp_path, [0, 2])
