"""Helpers shared by the dataset adapters, one module per job (this module gathers their names):

* :mod:`.cells`: cells as text (``/``, blanks, NaN, ``46.0``), frame numbers, RowError and its kinds;
* :mod:`.tables`: reading a sheet (xlsx, xls, csv), the header row found by content, columns by name;
* :mod:`.files`: the annotation file by its usual names, frame folders, folders named by cells
  (kept inside the dataset root);
* :mod:`.clips`: a row's frame numbers checked and turned into positions in the clip folder's
  sorted frames, and the sample's notes;
* :mod:`.apex`: the apex rules (``middle``, ``max-motion``);
* :mod:`.rows`: the row loop (each row a Sample or one Failure naming file, row and sample) and
  :class:`LoadResult`.

Strings read from annotation files are data only: they are never evaluated, and any path built
from them is checked to stay inside the dataset root.
"""

from __future__ import annotations

from .apex import APEX_RULES, check_apex_rule, estimate_apex
from .cells import (
    FAILURE_KINDS,
    MISSING,
    RowError,
    clean_cell,
    is_missing,
    name_key,
    norm_emotion,
    norm_header,
    parse_frame_number,
)
from .clips import LONG_INTERVAL_S, FrameIndex, resolve_clip, sheet_apex
from .files import annotation_candidates, child_dir, describe_dir, find_annotation, find_dirs, subject_dir, walk
from .rows import (
    LoadResult,
    RowCollector,
    RowRef,
    SheetRows,
    collect_rows,
    numbered_subject_label,
    read_annotation,
    row_frames,
    run_rows,
    subject_clip_dir,
)
from .tables import Table, read_sheet, read_table, sheet_names

__all__ = [
    "APEX_RULES",
    "FAILURE_KINDS",
    "LONG_INTERVAL_S",
    "MISSING",
    "FrameIndex",
    "LoadResult",
    "RowCollector",
    "RowError",
    "RowRef",
    "SheetRows",
    "Table",
    "annotation_candidates",
    "check_apex_rule",
    "child_dir",
    "clean_cell",
    "collect_rows",
    "describe_dir",
    "estimate_apex",
    "find_annotation",
    "find_dirs",
    "is_missing",
    "name_key",
    "norm_emotion",
    "norm_header",
    "numbered_subject_label",
    "parse_frame_number",
    "read_annotation",
    "read_sheet",
    "read_table",
    "resolve_clip",
    "row_frames",
    "run_rows",
    "sheet_apex",
    "sheet_names",
    "subject_clip_dir",
    "subject_dir",
    "walk",
]
