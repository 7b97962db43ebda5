"""CAS(ME)^3 part A (Li et al., 2022, Institute of Psychology, CAS): 860 micro-expressions, 100 subjects.

Point ``root`` at the part A folder (or the CAS(ME)^3 folder above it):

* annotation: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (override with ``annotation=``).
  Columns, by header text: Subject (``spNO.1``), Filename (``a``, ``b``...), Onset, Apex, Offset,
  AU, Objective class, emotion. When the sheet has an expression-type column, only rows whose type
  is a micro-expression are kept (the others are skipped, not failures).
* frames: ``spNO.1/a/color/175.jpg`` (the subject folder is searched for under ``root``; the
  ``color`` sub-folder is used when present, set ``modality`` for another one such as ``depth``).

Several micro-expressions can come from one (subject, filename) video: those rows get distinct
sample ids ``a_1``, ``a_2``... numbered in onset order (the original filename is kept in
``extra["filename"]``). Rows with onset == apex are kept and flagged in ``extra``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import AnnotationError
from .common import (
    RowError,
    child_dir,
    collect_rows,
    norm_header,
    read_annotation,
    row_frames,
    sheet_extra,
    sheet_sample,
    _walk,
)

NAME = "casme3"
DESCRIPTION = "CAS(ME)^3 part A: 860 micro-expressions of 100 subjects, 30 fps, RGB-D"
EMOTIONS = ("anger", "disgust", "fear", "happy", "others", "sad", "surprise")
ANNOTATION_PATTERNS = (
    "cas(me)3_part_A_ME_label_JpgIndex_v*.xlsx",
    "cas(me)3_part_A_ME_label*.xlsx",
    "cas(me)*part*A*label*.xls*",
    "cas(me)*part*A*label*.csv",
)
EXPECTS = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx and spNO.1/a/color/175.jpg"
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("Onset", "Onset Frame", "OnsetFrame"),
    "apex": ("Apex", "Apex Frame", "ApexFrame"),
    "offset": ("Offset", "Offset Frame", "OffsetFrame"),
    "aus": ("AU", "AUs", "Action Units"),
    "objective": ("Objective class", "Objective classes"),
    "emotion": ("emotion", "Estimated Emotion"),
    "type": ("Expression type", "Type", "ME/MaE"),
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "emotion")
MICRO_TYPES = {"micro", "microexpression", "me", "micro expression"}


def _is_micro(value: str) -> bool:
    v = value.strip().lower()
    return v in MICRO_TYPES or norm_header(v) in {norm_header(t) for t in MICRO_TYPES}


def _subject_dirs(root: Path) -> dict[str, Path]:
    """Subject folders (``spNO.1``...) under ``root``, by lower-case name (shallowest first)."""
    out: dict[str, Path] = {}
    for p in _walk(root, 5):
        if p.is_dir() and p.name.lower().startswith("spno."):
            out.setdefault(p.name.lower(), p)
    return out


def load(root, annotation=None, *, modality: str = "color", apex_rule: str = "middle"):
    """Read CAS(ME)^3 part A micro-expressions from ``root``. Returns ``(samples, failures)``."""
    root = Path(root)
    path, table = read_annotation(
        root, annotation, ANNOTATION_PATTERNS, COLUMNS, REQUIRED,
        what="CAS(ME)^3 part A label", apex_rule=apex_rule, max_depth=5,
    )
    subjects = _subject_dirs(root)
    if not subjects:
        raise AnnotationError(f"no CAS(ME)^3 subject folders (spNO.1 ...) under {root}")
    rows = [(n, r) for n, r in table.rows if not (table.has("type") and r.get("type") and not _is_micro(r["type"]))]
    # distinct ids for several expressions of one (subject, filename) video, numbered by onset
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for n, r in rows:
        groups[(r["subject"].lower(), r["filename"].lower())].append((n, r))
    ids: dict[int, str] = {}
    for (_, _), members in groups.items():
        if len(members) == 1:
            ids[members[0][0]] = members[0][1]["filename"]
            continue

        def onset_key(m):
            try:
                return (0, float(m[1]["onset"]), m[0])
            except ValueError:
                return (1, 0.0, m[0])

        for k, (n, r) in enumerate(sorted(members, key=onset_key), start=1):
            ids[n] = f"{r['filename']}_{k}"
    cache: dict = {}

    def build(row, ref):
        subject, fname = ref.subject, row["filename"]
        sdir = subjects.get(subject.lower())
        if sdir is None:
            raise RowError(f"subject folder {subject!r} not found under {root}")
        folder = child_dir(sdir, fname, root, what="video")
        mod = next((c for c in folder.iterdir() if c.is_dir() and c.name.lower() == modality.lower()), None)
        if mod is not None:
            folder = mod
        elif any(c.is_dir() for c in folder.iterdir()):
            raise RowError(f"no {modality!r} folder in {folder}")
        numbers = row_frames(row)
        extra = sheet_extra(path, row, filename=fname)
        if row.get("objective"):
            extra["objective_class"] = row["objective"]
        if ref.sample_id != fname:
            n = len(groups[(subject.lower(), fname.lower())])
            extra["note"] = f"one of {n} expressions in video {subject}/{fname}"
        return sheet_sample(NAME, ref, row, folder, numbers, extra, apex_rule=apex_rule, cache=cache)

    return collect_rows(NAME, path, rows, build, lambda rowno, row: (row["subject"], ids[rowno]))
