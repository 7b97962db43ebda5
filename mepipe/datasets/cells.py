"""Annotation cells as text: cleaning (``/``, blanks, NaN, ``46.0``), frame numbers, header and
emotion keys; :class:`RowError` (why one row cannot be used, and which kind of failure it is).

Strings read from annotation files are data only: they are never evaluated.
"""

from __future__ import annotations

import math
import re

#: Cell values meaning "no value" in the annotation sheets (compared lower-cased, stripped).
MISSING = {"", "/", "-", "--", "nan", "none", "n/a", "na", "null", "?"}

#: The kinds of row failures (``datasets check`` counts failures by these).
FAILURE_KINDS: dict[str, str] = {
    "missing_value": "a required cell (subject, filename, onset, offset...) is empty",
    "not_a_number": "a frame cell is not a whole, non-negative number",
    "below_first_frame": "a frame number below the dataset's first frame number (0 where frames start at 1)",
    "onset_after_offset": "the onset frame is after the offset frame",
    "apex_outside": "the apex is outside onset..offset and onset..offset is too long to trust (or absent): "
    "the row does not tell which frame is wrong",
    "folder_not_found": "the subject, clip or video folder is missing",
    "frame_not_found": "a frame number has no file in the clip folder",
    "bad_frames": "the clip folder has fewer than two frames, or two files carry one number",
    "unknown_emotion": "the emotion is none of the dataset's classes",
    "duplicate": "a second row for a sample already loaded",
    "unsafe_name": "a name from the sheet is not a plain folder name or leads outside the dataset root",
    "other": "any other problem",
}


class RowError(ValueError):
    """One annotation row cannot be used; the message says why (the caller adds file and row).
    ``kind`` is one of :data:`FAILURE_KINDS`."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind if kind in FAILURE_KINDS else "other"


def clean_cell(value) -> str:
    """A cell as stripped text: ``None``/NaN give ``""``, whole floats lose ``.0`` (``46.0`` -> ``46``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    s = str(value).replace("\u00a0", " ").strip()
    if s.lower() == "nan":
        return ""
    return s


def is_missing(text: str) -> bool:
    """True for the cells the datasets use to mean "no value" (blank, ``/``, ``-``, ``nan`` ...)."""
    return clean_cell(text).lower() in MISSING


def parse_frame_number(
    value, column: str, *, required: bool = True, negative_is_missing: bool = False, index: bool = False
):
    """Parse a frame-number cell. Blank or ``/`` give ``None`` (or RowError when ``required``).

    Accepts ``46``, ``46.0``, ``" 46 "``; refuses fractions, text and negatives (SAMM writes
    ``-1`` for an unknown apex: pass ``negative_is_missing=True`` there). With ``index=True`` the
    value is a 0-based frame index from a manifest: only an empty cell is missing (``/`` and
    ``nan`` are refused as not a number) and the messages speak of a frame index.
    """
    if index:
        s = str(value or "").strip()
        blank = s == ""
    else:
        s = clean_cell(value)
        blank = s.lower() in MISSING
    if blank:
        if required:
            raise RowError(f"{column} is empty", "missing_value")
        return None
    kind = "frame index" if index else "frame number"
    not_a_number = f"{column} is not a {'number' if index else kind}: {s!r}"
    try:
        f = float(s)
    except ValueError:
        raise RowError(not_a_number, "not_a_number") from None
    if math.isnan(f) or math.isinf(f):
        raise RowError(not_a_number, "not_a_number")
    if not f.is_integer():
        raise RowError(f"{column} is not a whole {kind}: {s!r}", "not_a_number")
    if f < 0:
        if negative_is_missing:
            if required:
                raise RowError(f"{column} is unknown ({s})", "missing_value")
            return None
        raise RowError(f"{column} is negative: {s!r}", "not_a_number")
    return int(f)


def norm_header(text) -> str:
    """Header text reduced to lower-case letters and digits (``"Onset Frame"`` -> ``onsetframe``)."""
    return re.sub(r"[^a-z0-9]", "", clean_cell(text).lower())


def norm_emotion(text) -> str:
    """Emotion text lower-cased with runs of spaces, ``_`` and ``-`` made one space."""
    return re.sub(r"[\s_\-]+", " ", clean_cell(text).lower()).strip()


def name_key(text) -> str:
    """Identifier compared loosely: lower case, digit runs without leading zeros (``s01_ne_01`` == ``s1_ne_1``)."""
    s = clean_cell(text).lower()
    return re.sub(r"\d+", lambda m: str(int(m.group(0))), s)
