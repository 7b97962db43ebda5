"""SAMM (Davison et al., 2018, Manchester Metropolitan University): 159 micro-movements, 32 subjects.
Frame rate: 200 fps (:data:`FPS`).

Point ``root`` at the SAMM folder holding the FACS-codes sheet and the subject folders:

* annotation: ``SAMM_Micro_FACS_Codes_v2.xlsx`` or ``SAMM_20181215_Micro_FACS_Codes_v2.xlsx``
  (override with ``annotation=``). A title block sits above the header row; the header is found
  by its content. Columns, by header text: Subject, Filename, Inducement Code, Onset Frame, Apex
  Frame, Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes.
* frames: ``006/006_1_2/006_05562.jpg`` (4- or 5-digit frame numbers), directly under ``root``
  or under a ``SAMM`` folder inside it.

An apex of ``-1`` or a blank apex means "not coded": the apex is chosen with ``apex_rule`` and
the sample marked ``apex_estimated``. So is an apex outside onset..offset (the published sheet has
two such typos, ``028_4_1`` and ``032_3_1``; its Duration column agrees with their onset..offset).
AU cells are read by :mod:`mepipe.aus` (SAMM writes ``A`` for asymmetric, ``ref(..)``, ``or``
alternatives and intensities); ``Objective Classes`` becomes ``Sample.objective``; a Duration that
disagrees with offset - onset + 1 is a ``contradiction`` note.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from .rows import SheetRows, collect_rows, numbered_subject_label, read_annotation, row_frames, subject_clip_dir

NAME = "samm"
FPS = 200
DESCRIPTION = "SAMM: 159 micro-movements of 32 subjects, 200 fps, greyscale"
EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Other", "Sadness", "Surprise")
ANNOTATION_PATTERNS = (
    "SAMM_Micro_FACS_Codes_v*.xlsx",
    "SAMM_*_Micro_FACS_Codes*.xlsx",
    "SAMM*FACS*Codes*.xls*",
    "SAMM*FACS*Codes*.csv",
)
EXPECTS = "SAMM_Micro_FACS_Codes_v2.xlsx (title block above the header) and 006/006_1_2/006_05562.jpg"
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("Onset Frame", "OnsetFrame", "Onset"),
    "apex": ("Apex Frame", "ApexFrame", "Apex"),
    "offset": ("Offset Frame", "OffsetFrame", "Offset"),
    "duration": ("Duration",),
    "aus": ("Action Units", "ActionUnits", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Classes", "Objective Class"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "emotion")


def frames_root(root: Path) -> Path:
    """The folder holding the subject folders (``006``...): ``root`` itself or ``root/SAMM``."""
    for cand in (root, root / "SAMM", root / "samm"):
        if cand.is_dir() and any(p.is_dir() and p.name.isdigit() for p in cand.iterdir()):
            return cand
    raise AnnotationError(f"no SAMM subject folders (006, 007...) in {root} or {root / 'SAMM'}")


def load(root, annotation=None, *, apex_rule: str = "middle"):
    """Read SAMM from ``root``. Returns ``(samples, failures)``; one Failure per bad row."""
    root = Path(root)
    path, table = read_annotation(
        root, annotation, ANNOTATION_PATTERNS, COLUMNS, REQUIRED, what="SAMM FACS codes", apex_rule=apex_rule
    )
    fr = frames_root(root)
    ctx = SheetRows(NAME, path, apex_rule, fps=FPS)

    def build(row, ref):
        folder = subject_clip_dir(fr, row, ref, root, prefixes=("",), widths=(3, 2, 1))
        onset, _, offset = numbers = row_frames(row, negative_apex_is_missing=True)
        extra = ctx.extra(row)
        notes = []
        dur = row.get("duration", "")
        if dur:
            extra["duration"] = dur
            try:
                if int(float(dur)) != offset - onset + 1:
                    notes.append(
                        (
                            "contradiction",
                            f"Duration {dur} differs from offset - onset + 1 = "
                            f"{offset - onset + 1}; onset and offset are used",
                        )
                    )
            except ValueError:
                pass
        return ctx.sample(ref, row, folder, numbers, extra, notes=notes)

    return collect_rows(NAME, path, table.rows, build, numbered_subject_label("{:03d}"), sheet=table.sheet)
