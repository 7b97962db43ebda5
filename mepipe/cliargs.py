"""Command-line argument types and the parser class every ``mepipe`` command uses.

A bad value costs one line and exit status 2, before any work: ``mepipe train: error: argument
--lr: must be a finite number > 0, got 'inf'``. No traceback, no usage block.
"""

from __future__ import annotations

import argparse
import math


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: message``) and exit 2."""

    def error(self, message):  # noqa: D401 (argparse's name)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str, kind):
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    return v


def positive_int(text: str) -> int:
    """An integer >= 1."""
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return v


def jobs(text: str) -> int:
    """Worker count: >= 1, or -1 for every core this process may use."""
    v = _number(text, int)
    if v < 1 and v != -1:
        raise argparse.ArgumentTypeError(f"must be >= 1, or -1 for all cores; got {text!r}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _number(text, float)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    v = _number(text, float)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return v


def angle_deg(text: str) -> float:
    """An angle in degrees: any finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an angle in degrees: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not a finite angle: {text!r}")
    return v


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    v = _number(text, float)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return v


def index_ranges(text: str) -> list[int]:
    """``0-3,7`` -> [0, 1, 2, 3, 7]: a non-empty list of indices >= 0, each range ascending."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        a, sep, b = part.partition("-")
        try:
            lo = int(a)
            hi = int(b) if sep else lo
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not an index or a range like 0-3") from None
        if lo < 0 or hi < lo:
            raise argparse.ArgumentTypeError(f"{part!r} is not an ascending range of indices >= 0")
        out.extend(range(lo, hi + 1))
    if not out:
        raise argparse.ArgumentTypeError(f"no index in {text!r}")
    return sorted(set(out))
