"""The versions of the software that shapes a result, read from package metadata (nothing imported)."""

from __future__ import annotations

#: distributions whose versions are recorded in caches and run results (those not installed are left out)
DISTRIBUTIONS = (
    "numpy",
    "h5py",
    "pandas",
    "joblib",
    "torch",
    "dlib-bin",
    "dlib",
    "mediapipe",
    "opencv-contrib-python",
    "numba",
)


def library_versions() -> dict[str, str]:
    """``{"mepipe": ..., "python": ..., "numpy": ..., ...}`` for every installed distribution of
    :data:`DISTRIBUTIONS`."""
    import platform
    from importlib import metadata

    from . import __version__

    out = {"mepipe": __version__, "python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
