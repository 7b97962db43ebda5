"""mepipe: micro-expression recognition pipeline.

Importing :mod:`mepipe` is cheap: it pulls in none of dlib, mediapipe, OpenCV or torch.
Heavy stages import their libraries when they are first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "open_cache", "Sample", "AU_LIST"]


def __getattr__(name):  # PEP 562 lazy attributes: no heavy import at `import mepipe`
    if name == "open_cache":
        from .cache import open_cache

        return open_cache
    if name == "Sample":
        from .sample import Sample

        return Sample
    if name == "AU_LIST":
        from .aus import AU_LIST

        return AU_LIST
    raise AttributeError(f"module 'mepipe' has no attribute {name!r}")
