"""SAMM (Davison et al., 2018, Manchester Metropolitan University): 159 micro-movements, 32 subjects, 200 fps.

Point ``root`` at the SAMM folder holding the FACS-codes sheet and the subject folders:

* annotation: ``SAMM_Micro_FACS_Codes_v2.xlsx`` or ``SAMM_20181215_Micro_FACS_Codes_v2.xlsx``
  (override with ``annotation=``). A title block sits above the header row; the header is found
  by its content. Columns, by header text: Subject, Filename, Inducement Code, Onset Frame, Apex
  Frame, Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes.
* frames: ``006/006_1_2/006_05562.jpg`` (4- or 5-digit frame numbers), directly under ``root``
  or under a ``SAMM`` folder inside it.

An apex of ``-1`` or a blank apex means "not coded": the apex is chosen with ``apex_rule`` and
the sample marked ``apex_estimated``. AU cells such as ``R12 or R15`` keep both AUs, marked
uncertain (``R12?+R15?``); the cell as written is kept in ``extra["aus_raw"]``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from .common import (
    RowCollector,
    RowError,
    check_apex_rule,
    child_dir,
    find_annotation,
    parse_frame_number,
    read_table,
    resolve_clip,
    subject_dir,
)

NAME = "samm"
DESCRIPTION = "SAMM: 159 micro-movements of 32 subjects, 200 fps, greyscale"
EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Other", "Sadness", "Surprise")
ANNOTATION_PATTERNS = ("SAMM_Micro_FACS_Codes_v*.xlsx", "SAMM_*_Micro_FACS_Codes*.xlsx", "SAMM*FACS*Codes*.xls*", "SAMM*FACS*Codes*.csv")
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
    check_apex_rule(apex_rule)
    path = find_annotation(root, ANNOTATION_PATTERNS, annotation, what="SAMM FACS codes")
    table = read_table(path, COLUMNS, REQUIRED)
    fr = frames_root(root)
    col = RowCollector(NAME, path)
    cache: dict = {}
    for rowno, row in table.rows:
        subj_raw, fname = row["subject"], row["filename"]
        subject = f"{int(subj_raw):03d}" if subj_raw.isdigit() else subj_raw
        try:
            sdir = subject_dir(fr, subj_raw, root, prefixes=("",), widths=(3, 2, 1))
            subject = sdir.name
            folder = child_dir(sdir, fname, root, what="clip")
            onset = parse_frame_number(row["onset"], "onset frame")
            apex = parse_frame_number(row["apex"], "apex frame", required=False, negative_is_missing=True)
            offset = parse_frame_number(row["offset"], "offset frame")
            extra = {"annotation": path.name, **row["_extra"]}
            if row.get("objective"):
                extra["objective_class"] = row["objective"]
            if apex is None:
                extra["apex_cell"] = row["apex"] or "(blank)"
            dur = row.get("duration", "")
            if dur:
                extra["duration"] = dur
                try:
                    if int(float(dur)) != offset - onset + 1:
                        extra["note"] = f"Duration {dur} differs from offset - onset + 1 = {offset - onset + 1}"
                except ValueError:
                    pass
            sample = resolve_clip(
                dataset=NAME, subject=subject, sample_id=fname, folder=folder, onset=onset, apex=apex,
                offset=offset, emotion=row["emotion"], aus_text=row.get("aus", ""), apex_rule=apex_rule,
                extra=extra, index_cache=cache,
            )
            col.add(rowno, sample)
        except RowError as e:
            col.fail(rowno, subject, fname, str(e))
    return col.result()
