"""CASME II (Yan et al., 2014, Institute of Psychology, Chinese Academy of Sciences). Frame rate:
200 fps (:data:`FPS`).

Point ``root`` at the folder the provider sent, holding the coding sheet and a frame tree:

* annotation: the two official coding sheets ``CASME2-coding-20140508.xlsx`` and
  ``CASME2-coding-20190701.xlsx`` (the 2019 one relabels three sub24 clips from sadness to surprise
  and adds an ``Objective Classes`` column), also ``CASME2-coding-updated.xlsx`` or
  ``CASME2_label_Ver_2.xls``. Option ``sheet``: ``"auto"`` (the newest name; when both official
  sheets are found the choice is logged and ``mepipe datasets check`` prints it), ``"2014"`` or
  ``"2019"``; or ``annotation=`` names the file. Columns, found by header text: Subject, Filename,
  OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, Objective Classes (blank
  spacer columns are ignored).
* frames: ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`` (also ``CASME2-RAW``) or the cropped
  release ``Cropped/sub01/EP02_01f/reg_img46.jpg``; ``frames="auto"`` takes the first present
  of raw-selected, raw, cropped; ``"raw"``/``"cropped"`` or a folder name relative to ``root``
  choose one.

Sheet frame numbers are file numbers (``img46.jpg`` is 46) and are turned into positions. An apex
cell that is missing or ``/`` (or outside onset..offset) is chosen with ``apex_rule`` (``middle``
of onset..offset by default) and the sample is marked ``apex_estimated``, with a note.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path

from ..errors import AnnotationError
from .apex import check_apex_rule
from .files import annotation_candidates, find_annotation
from .rows import SheetRows, collect_rows, numbered_subject_label, row_frames, subject_clip_dir
from .tables import read_table

log = logging.getLogger("mepipe.datasets")

NAME = "casme2"
FPS = 200
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
    "objective": ("Objective Classes", "Objective Class"),
}
#: The official coding sheets by version, as ``sheet=`` names them.
SHEETS = {"2014": "CASME2-coding-20140508*", "2019": "CASME2-coding-20190701*"}
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


def choose_sheet(root: Path, annotation=None, sheet: str = "auto") -> tuple[Path, str]:
    """The coding sheet to read and, when there was a choice, how it was made.

    ``annotation`` (a file) wins; else ``sheet`` ``"2014"``/``"2019"`` picks that official sheet, and
    ``"auto"`` the newest name (:data:`ANNOTATION_PATTERNS` order). With both official sheets under
    ``root`` the choice is logged and returned.
    """
    if sheet not in ("auto", *SHEETS):
        raise AnnotationError(f"unknown CASME II sheet {sheet!r}; use auto, {', '.join(SHEETS)}")
    if annotation:
        if sheet != "auto":
            raise AnnotationError("give either annotation= (a file) or sheet= (2014 | 2019), not both")
        return find_annotation(root, ANNOTATION_PATTERNS, annotation, what="CASME II coding"), ""
    path = find_annotation(root, ANNOTATION_PATTERNS, what="CASME II coding")  # also checks the root
    found = sorted({p for hits in annotation_candidates(root, ANNOTATION_PATTERNS) for p in hits})
    official = {v: [p for p in found if fnmatch.fnmatch(p.name.lower(), pat.lower())] for v, pat in SHEETS.items()}
    if sheet != "auto":
        if not official[sheet]:
            raise AnnotationError(
                f"no CASME II {sheet} coding sheet ({SHEETS[sheet]}) under {root}; "
                f"found: {', '.join(p.name for p in found)}"
            )
        path = official[sheet][-1]
        return path, f"sheet {sheet} chosen: {path.name}" if all(official.values()) else ""
    if all(official.values()):
        choice = (
            f"both CASME II coding sheets found ({', '.join(v[-1].name for v in official.values())}); "
            f"using {path.name} (option sheet = 2014 | 2019 chooses)"
        )
        log.info(choice)
        return path, choice
    return path, ""


def load(root, annotation=None, *, frames: str = "auto", apex_rule: str = "middle", sheet: str = "auto"):
    """Read CASME II from ``root``. Returns ``(samples, failures)``; one Failure per bad row."""
    root = Path(root)
    check_apex_rule(apex_rule)
    path, choice = choose_sheet(root, annotation, sheet)
    table = read_table(path, COLUMNS, REQUIRED)
    fr = frames_root(root, frames)
    ctx = SheetRows(NAME, path, apex_rule, fps=FPS)

    def build(row, ref):
        folder = subject_clip_dir(fr, row, ref, root, prefixes=("sub",), widths=(2, 1, 3))
        return ctx.sample(ref, row, folder, row_frames(row, offset_required=False))

    return collect_rows(
        NAME, path, table.rows, build, numbered_subject_label("sub{:02d}"), sheet=table.sheet, choice=choice
    )
