"""Face crop with dlib: detect on the onset frame, fit 68 landmarks, one square box for the clip."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import StageError
from ..resources import CNN_FACE_DETECTOR, SHAPE_PREDICTOR_68, dlib_model

CROP_DEFAULTS = {"detector": "hog", "upsample": 0, "detect_max_side": 640, "margin": 0.25, "min_face": 40,
                 "multi_face": "largest"}


@dataclass
class CropResult:
    box: tuple[float, float, float]  # x0, y0, side (square, frame pixels; may extend past the frame)
    landmarks68: np.ndarray  # (68, 2) float32, frame pixels
    n_faces: int


def square_box(landmarks: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square box centred on the landmarks' bounding box, its side grown by ``margin`` on each side."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return float(cx - side / 2.0), float(cy - side / 2.0), float(side)


_MODELS: dict = {}


def _models(detector: str):
    """dlib detector and predictor, loaded once per process and reused for every sample."""
    import dlib

    if detector not in _MODELS:
        if detector == "hog":
            det = dlib.get_frontal_face_detector()
        elif detector == "cnn":
            det = dlib.cnn_face_detection_model_v1(str(dlib_model(CNN_FACE_DETECTOR)))
        else:
            raise ValueError(f"unknown face detector {detector!r}: use 'hog' or 'cnn'")
        _MODELS[detector] = det
    if "predictor" not in _MODELS:
        _MODELS["predictor"] = dlib.shape_predictor(str(dlib_model(SHAPE_PREDICTOR_68)))
    return _MODELS[detector], _MODELS["predictor"]


class FaceCropper:
    """``FaceCropper(recipe['crop']).detect(bgr) -> CropResult``; raises ``StageError('crop', ...)``."""

    def __init__(self, params: dict | None = None):
        p = dict(CROP_DEFAULTS)
        p.update(params or {})
        self.p = p
        if p["multi_face"] not in ("largest", "fail"):
            raise ValueError(f"crop.multi_face must be 'largest' or 'fail', not {p['multi_face']!r}")

    def detect(self, bgr: np.ndarray) -> CropResult:
        import cv2
        import dlib

        det, predictor = _models(self.p["detector"])
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        # detect at no more than detect_max_side (HOG's cost grows with pixels; SAMM frames are
        # 2040 px wide); a small frame showing no face is tried again enlarged to detect_max_side.
        # The 68 landmarks are always fitted on the frame at its own resolution.
        limit = int(self.p.get("detect_max_side") or 0)
        big = max(grey.shape)
        scales = [min(1.0, limit / big)] if limit > 0 else [1.0]
        if limit > big:
            scales.append(limit / big)
        for f in scales:
            small = grey if f == 1.0 else cv2.resize(grey, (round(grey.shape[1] * f), round(grey.shape[0] * f)),
                                                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
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
        shape = predictor(grey, dlib.rectangle(x0, y0, x1, y1))
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float32)
        return CropResult(square_box(pts, float(self.p["margin"])), pts, len(rects))


def crop_image(bgr: np.ndarray, box, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the square ``box`` out of ``bgr`` resized to ``size``; returns (image, 2x3 matrix frame->crop).

    Parts of the box outside the frame are filled by replicating the border.
    """
    import cv2

    x0, y0, side = box
    s = size / side
    m = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]], dtype=np.float64)
    out = cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out, m
