"""CASME II (Yan et al., 2014, Institute of Psychology, Chinese Academy of Sciences).

Point ``root`` at the folder the provider sent, holding the coding sheet and a frame tree:

* annotation: ``CASME2-coding-20140508.xlsx``, ``CASME2-coding-20190701.xlsx``,
  ``CASME2-coding-updated.xlsx`` or ``CASME2_label_Ver_2.xls`` (newest name wins; override with
  ``annotation=``). Columns, found by header text: Subject, Filename, OnsetFrame, ApexFrame,
  OffsetFrame, Action Units, Estimated Emotion (blank spacer columns are ignored).
* frames: ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`` (also ``CASME2-RAW``) or the cropped
  release ``Cropped/sub01/EP02_01f/reg_img46.jpg``; ``frames="auto"`` takes the first present
  of raw-selected, raw, cropped; ``"raw"``/``"cropped"`` or a folder name relative to ``root``
  choose one.

Sheet frame numbers are file numbers (``img46.jpg`` is 46) and are turned into positions. Some
apex cells are missing or ``/``: the apex is then chosen with ``apex_rule`` (``middle`` of
onset..offset by default, as done for SMIC) and the sample is marked ``apex_estimated``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from .common import (
    collect_rows,
    numbered_subject_label,
    read_annotation,
    row_frames,
    sheet_extra,
    sheet_sample,
    subject_clip_dir,
)

NAME = "casme2"
DESCRIPTION = "CASME II: 255 micro-expressions of 26 subjects, 200 fps"
EMOTIONS = ("disgust", "fear", "happiness", "others", "repression", "sadness", "surprise")
ANNOTATION_PATTERNS = (
    "CASME2-coding-updated*.xlsx",
    "CASME2-coding-*.xlsx",
    "CASME2_label_Ver_*.xls",
    "CASME2-coding*.xls",
    "CASME2-coding*.csv",
    "CASME2*label*.xls*",
)
FRAME_DIRS = {
    "raw": ("CASME2_RAW_selected", "CASME2-RAW-selected", "CASME2_RAW", "CASME2-RAW", "CASME2RAW"),
    "cropped": ("Cropped", "CASME2_Cropped", "Cropped_original", "CASME2-Cropped"),
}
EXPECTS = (
    "CASME2-coding-*.xlsx (or CASME2_label_Ver_2.xls) and "
    "CASME2_RAW_selected/sub01/EP02_01f/img46.jpg or Cropped/sub01/EP02_01f/reg_img46.jpg"
)
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name", "Sample"),
    "onset": ("OnsetFrame", "Onset Frame", "OnsetF", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "ApexF1", "ApexF", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "OffsetF", "Offset"),
    "aus": ("Action Units", "ActionUnits", "AUs", "AU"),
    "emotion": ("Estimated Emotion", "Emotion", "Estimated Emotions"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "emotion")


def frames_root(root: Path, frames: str = "auto") -> Path:
    """The folder holding ``sub01``, ``sub02``...: chosen by ``frames`` (auto, raw, cropped, or a path)."""
    root = Path(root)
    kinds = ("raw", "cropped") if frames == "auto" else (frames,) if frames in FRAME_DIRS else ()
    for kind in kinds:
        for d in FRAME_DIRS[kind]:
            for base in (root, *[p for p in sorted(root.iterdir()) if p.is_dir()]):
                if (base / d).is_dir():
                    return base / d
    if frames not in ("auto", *FRAME_DIRS):
        p = Path(frames)
        p = p if p.is_absolute() else root / p
        if not p.is_dir():
            raise AnnotationError(f"CASME II frame folder not found: {p}")
        return p
    if any(p.is_dir() and p.name.lower().startswith("sub") for p in root.iterdir()):
        return root
    names = [d for k in kinds for d in FRAME_DIRS[k]]
    raise AnnotationError(f"no CASME II frame folder under {root} (looked for {', '.join(names)} or sub01...)")


def load(root, annotation=None, *, frames: str = "auto", apex_rule: str = "middle"):
    """Read CASME II from ``root``. Returns ``(samples, failures)``; one Failure per bad row."""
    root = Path(root)
    path, table = read_annotation(
        root, annotation, ANNOTATION_PATTERNS, COLUMNS, REQUIRED, what="CASME II coding", apex_rule=apex_rule
    )
    fr = frames_root(root, frames)
    cache: dict = {}

    def build(row, ref):
        folder = subject_clip_dir(fr, row, ref, root, prefixes=("sub",), widths=(2, 1, 3))
        numbers = row_frames(row, offset_required=False)
        extra = sheet_extra(path, row)
        if numbers[1] is None:
            extra["apex_cell"] = row["apex"] or "(blank)"
        return sheet_sample(NAME, ref, row, folder, numbers, extra, apex_rule=apex_rule, cache=cache)

    return collect_rows(NAME, path, table.rows, build, numbered_subject_label("sub{:02d}"))
