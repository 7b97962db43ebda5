"""MMEW (Ben et al., 2021, Shandong University): 300 micro-expressions of 36 subjects. Frame rate:
90 fps (:data:`FPS`).

Point ``root`` at the MMEW folder:

* annotation: ``MMEW_Micro_Exp.xlsx`` (override with ``annotation=``). Columns, by header text:
  Subject, Filename (``S01-01-001``), OnsetFrame, ApexFrame, OffsetFrame, Action Units,
  Estimated Emotion, remarks.
* frames: ``Micro_Expression/<emotion>/S01-01-001/15.jpg``; the clip folder is looked up by its
  name in every emotion folder, so a clip filed under another emotion folder than its sheet
  emotion is still found (a ``contradiction`` note; the sheet's emotion is used).

MMEW writes an AU's side after its number (``12L``, ``4R+7``); :mod:`mepipe.aus` reads it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from .cells import RowError, norm_emotion
from .files import find_dirs
from .rows import SheetRows, collect_rows, read_annotation, row_frames

NAME = "mmew"
FPS = 90
DESCRIPTION = "MMEW: 300 micro-expressions of 36 subjects, 90 fps"
EMOTIONS = ("anger", "disgust", "fear", "happiness", "others", "sadness", "surprise")
ANNOTATION_PATTERNS = ("MMEW_Micro_Exp*.xlsx", "MMEW*Micro*.xls*", "MMEW*Micro*.csv")
EXPECTS = "MMEW_Micro_Exp.xlsx and Micro_Expression/happiness/S01-01-001/15.jpg"
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "aus": ("Action Units", "ActionUnits", "AUs", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "remarks": ("remarks", "remark", "Notes"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "emotion")


def _clip_index(root: Path) -> dict[str, Path]:
    bases = find_dirs(root, ["Micro_Expression", "Micro-Expression", "MicroExpression"], max_depth=3)
    if not bases:
        raise AnnotationError(f"no Micro_Expression folder under {root}")
    out: dict[str, Path] = {}
    for edir in sorted(p for p in bases[0].iterdir() if p.is_dir()):
        for clip in sorted(p for p in edir.iterdir() if p.is_dir()):
            out.setdefault(clip.name.lower(), clip)
    return out


def load(root, annotation=None, *, apex_rule: str = "middle"):
    """Read MMEW micro-expressions from ``root``. Returns ``(samples, failures)``."""
    root = Path(root)
    path, table = read_annotation(
        root, annotation, ANNOTATION_PATTERNS, COLUMNS, REQUIRED, what="MMEW annotation", apex_rule=apex_rule
    )
    clips = _clip_index(root)
    ctx = SheetRows(NAME, path, apex_rule, fps=FPS)

    def build(row, ref):
        fname = ref.sample_id
        if not ref.subject:
            raise RowError("subject is empty", "missing_value")
        folder = clips.get(fname.lower())
        if folder is None or "/" in fname or "\\" in fname:
            raise RowError(
                f"clip folder {fname!r} not found in any emotion folder of Micro_Expression", "folder_not_found"
            )
        extra = ctx.extra(row)
        if row.get("remarks"):
            extra["remarks"] = row["remarks"]
        notes = []
        if norm_emotion(folder.parent.name) != norm_emotion(row["emotion"]):
            notes.append(
                (
                    "contradiction",
                    f"clip is filed under {folder.parent.name}/ but the sheet says "
                    f"{row['emotion']}; the sheet's emotion is used",
                )
            )
        return ctx.sample(ref, row, folder, row_frames(row), extra, notes=notes)

    return collect_rows(NAME, path, table.rows, build, sheet=table.sheet)
