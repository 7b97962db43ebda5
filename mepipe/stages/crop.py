"""Face crop with dlib: detect on the onset frame, one square box for the clip.

The box comes from the detector's rectangle by default (``box = "detector"``): MediaPipe fits
the landmarks that align the face afterwards, so fitting dlib's 68 points as well would only
cost time (about 0.8 s to load the predictor per process, 5 ms per sample). ``box =
"landmarks68"`` fits them and squares the box around them instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import StageError
from ..resources import CNN_FACE_DETECTOR, SHAPE_PREDICTOR_68, dlib_model, frontal_face_detector

#: Where the 68 landmarks' bounding box lies relative to a detector's rectangle of side ``w``, per
#: detector: ``(dy, scale)``, its centre is ``dy * w`` lower and its longer side is ``scale * w``.
#: Measured on 12 detections of real faces (``../shared/data/faces`` stills and video frames,
#: scikit-image's astronaut, matplotlib's Grace Hopper): HOG dy 0.073 (sd 0.024), scale 0.93
#: (sd 0.087); CNN (MMOD) dy 0.157 (sd 0.049), scale 1.00 (sd 0.11). With them the ``detector``
#: box matches the ``landmarks68`` box at the same margin.
DETECTOR_BOX = {"hog": (0.073, 0.93), "cnn": (0.157, 1.00)}


@dataclass
class CropResult:
    box: tuple[float, float, float]  # x0, y0, side (square, frame pixels; may extend past the frame)
    landmarks68: np.ndarray | None  # (68, 2) float32, frame pixels (``box = "landmarks68"`` only)
    n_faces: int


def detector_box(
    rect: tuple[float, float, float, float], margin: float, detector: str = "hog"
) -> tuple[float, float, float]:
    """Square box from a ``detector`` rectangle ``(x0, y0, x1, y1)``: the 68-landmark box it predicts
    (:data:`DETECTOR_BOX`), its side grown by ``margin`` on each side."""
    dy, scale = DETECTOR_BOX[detector]
    x0, y0, x1, y1 = (float(v) for v in rect)
    w = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0 + dy * w
    side = scale * w * (1.0 + 2.0 * margin)
    return float(cx - side / 2.0), float(cy - side / 2.0), float(side)


def square_box(landmarks: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square box centred on the landmarks' bounding box, its side grown by ``margin`` on each side."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return float(cx - side / 2.0), float(cy - side / 2.0), float(side)


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()
_LOCAL = threading.local()


def _detector(detector: str):
    """dlib face detector, loaded once per thread and reused for every sample (a dlib detector
    keeps its image pyramid in itself, so threads cannot share one)."""
    import dlib

    models = getattr(_LOCAL, "detectors", None)
    if models is None:
        models = _LOCAL.detectors = {}
    if detector not in models:
        if detector == "hog":
            det = frontal_face_detector()
        elif detector == "cnn":
            det = dlib.cnn_face_detection_model_v1(str(dlib_model(CNN_FACE_DETECTOR)))
        else:
            raise ValueError(f"unknown face detector {detector!r}: use 'hog' or 'cnn'")
        models[detector] = det
    return models[detector]


def _predictor():
    """dlib's 68-point shape predictor (a 100 MB file), loaded once per process when first needed;
    its fit keeps no state, so threads share it."""
    import dlib

    with _MODELS_LOCK:
        if "predictor" not in _MODELS:
            _MODELS["predictor"] = dlib.shape_predictor(str(dlib_model(SHAPE_PREDICTOR_68)))
    return _MODELS["predictor"]


class FaceCropper:
    """``FaceCropper(recipe['crop']).detect(bgr) -> CropResult``; raises ``StageError('crop', ...)``."""

    def __init__(self, params: dict | None = None):
        from ..recipe_schema import checked_section

        self.p = checked_section("crop", params)

    def warm(self) -> None:
        """Load the dlib models this cropper uses now."""
        _detector(self.p["detector"])
        if self.p["box"] == "landmarks68":
            _predictor()

    def detect(self, bgr: np.ndarray) -> CropResult:
        import cv2
        import dlib

        det = _detector(self.p["detector"])
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        # detect at no more than detect_max_side (HOG's cost grows with pixels; SAMM frames are
        # 2040 px wide); a small frame showing no face is tried again enlarged to detect_max_side.
        # The box (and the 68 landmarks, when asked for) are in the frame's own resolution.
        limit = int(self.p.get("detect_max_side") or 0)
        big = max(grey.shape)
        scales = [min(1.0, limit / big)] if limit > 0 else [1.0]
        if limit > big:
            scales.append(limit / big)
        for f in scales:
            small = (
                grey
                if f == 1.0
                else cv2.resize(
                    grey,
                    (round(grey.shape[1] * f), round(grey.shape[0] * f)),
                    interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
                )
            )
            raw = det(small, int(self.p["upsample"]))
            rects = [r.rect if hasattr(r, "rect") else r for r in raw]  # CNN detections wrap their rect
            if rects:
                break
        if not rects:
            raise StageError("crop", "no face")
        if len(rects) > 1 and self.p["multi_face"] == "fail":
            raise StageError("crop", f"{len(rects)} faces found and crop.multi_face = 'fail'")
        r = max(rects, key=lambda r: r.width() * r.height())
        x0, y0, x1, y1 = (round(v / f) for v in (r.left(), r.top(), r.right(), r.bottom()))
        w, h = x1 - x0, y1 - y0
        if min(w, h) < self.p["min_face"]:
            raise StageError("crop", f"face too small: {w}x{h} px < crop.min_face {self.p['min_face']}")
        margin = float(self.p["margin"])
        if self.p["box"] == "detector":
            return CropResult(detector_box((x0, y0, x1, y1), margin, self.p["detector"]), None, len(rects))
        shape = _predictor()(grey, dlib.rectangle(x0, y0, x1, y1))
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float32)
        return CropResult(square_box(pts, margin), pts, len(rects))


def crop_image(bgr: np.ndarray, box, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the square ``box`` out of ``bgr`` resized to ``size``; returns (image, 2x3 matrix frame->crop).

    Parts of the box outside the frame are filled by replicating the border.
    """
    import cv2

    x0, y0, side = box
    s = size / side
    m = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]], dtype=np.float64)
    out = cv2.warpAffine(
        bgr, m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out, m
