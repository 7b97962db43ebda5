"""Apex rules, used where a dataset gives no usable apex: ``middle`` and ``max-motion``."""

from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from ..frames import FrameError
from .cells import RowError

APEX_RULES = ("middle", "max-motion")


def estimate_apex(files: list[Path], onset: int, offset: int, rule: str) -> int:
    """Choose an apex position between ``onset`` and ``offset`` (positions, inclusive).

    ``middle``: ``onset + (offset - onset) // 2``. ``max-motion``: the frame whose grey image has the
    largest mean absolute difference from the onset frame -- a cheap proxy for "most motion",
    sensitive to head movement and lighting as well as to the expression.
    """
    if rule not in APEX_RULES:
        raise RowError(f"unknown apex rule {rule!r}; use one of {', '.join(APEX_RULES)}")
    if offset <= onset:
        return onset
    if rule == "middle":
        return onset + (offset - onset) // 2
    import numpy as np

    from ..frames import read_image

    def grey(p):
        import cv2

        try:
            return cv2.cvtColor(read_image(p), cv2.COLOR_BGR2GRAY).astype(np.float32)
        except FrameError as e:
            raise RowError(f"max-motion apex rule: {e}", "bad_frames") from None

    ref = grey(files[onset])
    best, best_pos = -1.0, onset + (offset - onset) // 2
    for i in range(onset + 1, offset + 1):
        g = grey(files[i])
        if g.shape != ref.shape:
            raise RowError(f"frame size differs from the onset frame: {files[i]}", "bad_frames")
        d = float(np.abs(g - ref).mean())
        if d > best:
            best, best_pos = d, i
    return best_pos


def check_apex_rule(rule: str) -> str:
    if rule not in APEX_RULES:
        raise AnnotationError(f"unknown apex rule {rule!r}; use one of {', '.join(APEX_RULES)}")
    return rule
