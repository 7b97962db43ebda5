"""Frame access: folders of images (sorted by the number in the file name) and video files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm"}

_NUM = re.compile(r"(\d+)")


class FrameError(RuntimeError):
    """A frame could not be listed or read. The message names the file."""


def frame_number(path) -> int | None:
    """The last run of digits in a file's stem (``reg_img46.jpg`` -> 46, ``006_05562`` -> 5562)."""
    nums = _NUM.findall(Path(path).stem)
    return int(nums[-1]) if nums else None


def _sort_key(p: Path):
    n = frame_number(p)
    return (n is None, n if n is not None else 0, p.name)


def _regular_file(path: Path, what: str) -> None:
    """FrameError unless ``path`` is a regular file (following symlinks): a FIFO or a device would
    block or mislead the reader, and says so."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FrameError(f"{what} not found: {path}") from None
    except (OSError, RuntimeError) as e:
        raise FrameError(f"{what} cannot be read: {path} ({getattr(e, 'strerror', None) or e})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        raise FrameError(f"{what} is {kind}, not a regular file: {path}")


def is_frame_file(p: Path) -> bool:
    """An image file that is a frame: a known image extension, not hidden (``.x.jpg``, macOS
    ``._img0.png`` resource forks), a regular file."""
    return p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".") and p.is_file()


def list_frame_files(folder) -> list[Path]:
    """Image files of a folder sorted numerically (``img9`` before ``img10``); hidden files
    (``.*``, macOS ``._*``) are not frames."""
    folder = Path(folder)
    if not folder.exists():
        raise FrameError(f"frame folder not found: {folder}")
    if not folder.is_dir():
        raise FrameError(f"not a folder of frames: {folder}")
    files = [p for p in folder.iterdir() if is_frame_file(p)]
    if not files:
        raise FrameError(f"no image frames ({'/'.join(sorted(e[1:] for e in IMAGE_EXTS))}) in folder: {folder}")
    return sorted(files, key=_sort_key)


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def _to_bgr(img: np.ndarray, where: str) -> np.ndarray:
    """Grey, BGR, BGRA, 16-bit: all to uint8 BGR."""
    import cv2

    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise FrameError(f"unsupported pixel type {img.dtype}: {where}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    raise FrameError(f"unsupported image shape {img.shape}: {where}")


def read_image(path) -> np.ndarray:
    """Read one image as uint8 BGR ``(H, W, 3)``; truncated or corrupt files raise FrameError."""
    import cv2

    path = Path(path)
    _regular_file(path, "frame file")
    data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths, unlike cv2.imread
    if data.size == 0:
        raise FrameError(f"empty frame file: {path}")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FrameError(f"cannot decode image (corrupt or not an image): {path}")
    if path.suffix.lower() in {".jpg", ".jpeg"} and not data[-2:].tobytes() == b"\xff\xd9":
        # libjpeg pads a truncated stream with grey and only warns; refuse it instead
        raise FrameError(f"truncated JPEG (no end-of-image marker): {path}")
    return _to_bgr(img, str(path))


def count_frames(source) -> int:
    source = Path(source)
    if is_video(source):
        return len(_read_video(source, None))
    return len(list_frame_files(source))


def _read_video(path: Path, indices) -> list[np.ndarray]:
    """Decode a video sequentially (seeking is unreliable across containers)."""
    import cv2

    _regular_file(path, "video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FrameError(f"cannot open video: {path}")
    want = None if indices is None else set(int(i) for i in indices)
    last = None if want is None else max(want)
    frames: dict[int, np.ndarray] = {}
    out_all = []
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if want is None:
                out_all.append(frame)
            elif i in want:
                frames[i] = _to_bgr(frame, f"{path} frame {i}")
            i += 1
            if last is not None and i > last:
                break
    finally:
        cap.release()
    if want is None:
        if not out_all:
            raise FrameError(f"video has no decodable frames: {path}")
        return out_all
    missing = sorted(want - set(frames))
    if missing:
        raise FrameError(f"frame index {missing[0]} is past the last frame ({i - 1}) of video: {path}")
    return [frames[int(k)] for k in indices]


def read_frames(source, indices) -> list[np.ndarray]:
    """Read frames at 0-based positions ``indices`` from a folder or a video, as uint8 BGR.

    All returned frames have the same size; a frame of another size raises FrameError.
    """
    source = Path(source)
    indices = [int(i) for i in indices]
    if any(i < 0 for i in indices):
        raise FrameError(f"negative frame index {min(indices)} for {source}")
    if is_video(source):
        frames = _read_video(source, indices)
        names = [f"{source} frame {i}" for i in indices]
    else:
        files = list_frame_files(source)
        for i in indices:
            if i >= len(files):
                raise FrameError(f"frame index {i} is past the last frame ({len(files) - 1}) of folder: {source}")
        frames = [read_image(files[i]) for i in indices]
        names = [str(files[i]) for i in indices]
    shape0 = frames[0].shape
    for f, n in zip(frames, names):
        if f.shape != shape0:
            raise FrameError(f"frame size {f.shape[1]}x{f.shape[0]} differs from {shape0[1]}x{shape0[0]}: {n}")
    return frames
