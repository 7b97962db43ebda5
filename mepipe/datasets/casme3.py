"""CAS(ME)^3 part A (Li et al., 2022, Institute of Psychology, CAS): the published micro-expression
sheet has 860 rows of 94 subjects. Frame rate: 30 fps (:data:`FPS`); video frames are numbered
from 1 (:data:`FIRST_FRAME`).

Point ``root`` at the part A folder (or the CAS(ME)^3 folder above it):

* annotation: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (override with ``annotation=``).
  Columns, by header text: Subject (``spNO.1``), Filename (``a``, ``b``...), Onset, Apex, Offset,
  AU, Objective class (``Sample.objective``), emotion. When the sheet has an expression-type
  column, only rows whose type is a micro-expression are kept (the others are counted as skipped,
  not failures).
* frames, in one of two layouts (option ``layout``):

  - ``"video"``: the full videos, ``data/part_A/spNO.1/a/color/175.jpg`` (subject folders are
    searched for under ``root``; the ``color`` sub-folder is used when present, ``modality``
    names another one such as ``depth``);
  - ``"clip"``: one folder per expression, as public loaders use them,
    ``Part_A_ME_clip/frame/spNO.1_a_355/355.jpg`` (files keep the video's frame numbers;
    ``modality="depth"`` reads ``Part_A_ME_clip/depth/``);
  - ``"auto"`` (default): the clip layout when a ``Part_A_ME_clip`` folder is found, else the
    video layout. When neither is found, the error lists what ``root`` holds and the layouts tried.

Sample ids are ``<Subject>_<Filename>_<Onset>`` (``spNO.10_a_116``), the names of the public
per-expression lists: an id does not depend on which other rows the sheet holds; the filename is
kept in ``extra["filename"]``. Emotions are lower-cased (the sheet writes ``Others`` three times
beside ``others``). A row's frame numbers are checked before its folder is looked for, so a broken
row fails with the same reason in both layouts.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AnnotationError
from .cells import RowError, norm_header
from .clips import sheet_apex
from .files import child_dir, describe_dir, find_dirs, walk
from .rows import SheetRows, collect_rows, read_annotation, row_frames

NAME = "casme3"
FPS = 30
FIRST_FRAME = 1
DESCRIPTION = "CAS(ME)^3 part A: 860 micro-expressions of 94 subjects (published sheet), 30 fps, RGB-D"
EMOTIONS = ("anger", "disgust", "fear", "happy", "others", "sad", "surprise")
ANNOTATION_PATTERNS = (
    "cas(me)3_part_A_ME_label_JpgIndex_v*.xlsx",
    "cas(me)3_part_A_ME_label*.xlsx",
    "cas(me)*part*A*label*.xls*",
    "cas(me)*part*A*label*.csv",
)
EXPECTS = (
    "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx and spNO.1/a/color/175.jpg, or Part_A_ME_clip/frame/spNO.1_a_355/355.jpg"
)
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
LAYOUTS = {
    "clip": "Part_A_ME_clip/frame/<Subject>_<Filename>_<Onset>/<n>.jpg (one folder per expression)",
    "video": "spNO.<n>/<Filename>/color/<n>.jpg (full videos; subject folders up to 5 levels down)",
}
CLIP_FOLDERS = {"color": "frame", "depth": "depth"}  # modality -> folder under Part_A_ME_clip


def _is_micro(value: str) -> bool:
    v = value.strip().lower()
    return v in MICRO_TYPES or norm_header(v) in {norm_header(t) for t in MICRO_TYPES}


def sample_id(row) -> str:
    """``<Subject>_<Filename>_<Onset>``, the onset written without leading zeros or ``.0``."""
    onset = row["onset"]
    return f"{row['subject']}_{row['filename']}_{int(onset) if onset.isdigit() else onset}"


def _subject_dirs(root: Path) -> dict[str, Path]:
    """Subject folders (``spNO.1``...) under ``root``, by lower-case name (shallowest first)."""
    out: dict[str, Path] = {}
    for p in walk(root, 5):
        if p.is_dir() and p.name.lower().startswith("spno."):
            out.setdefault(p.name.lower(), p)
    return out


def _clip_base(root: Path, modality: str) -> Path | None:
    """``Part_A_ME_clip/frame`` (or the modality's folder) under ``root``, if there is one."""
    want = CLIP_FOLDERS.get(modality.lower(), modality).lower()
    for clips in find_dirs(root, ["Part_A_ME_clip"], max_depth=4):
        sub = next((c for c in sorted(clips.iterdir()) if c.is_dir() and c.name.lower() == want), None)
        if sub is not None:
            return sub
    return None


def find_layout(root: Path, layout: str, modality: str):
    """``("clip", frame folder)`` or ``("video", subject folders)``; AnnotationError naming what
    ``root`` holds and the layouts tried when none matches."""
    if layout not in ("auto", *LAYOUTS):
        raise AnnotationError(f"unknown CAS(ME)^3 layout {layout!r}; use auto, {', '.join(LAYOUTS)}")
    tried = [k for k in LAYOUTS if layout in ("auto", k)]
    if "clip" in tried:
        base = _clip_base(root, modality)
        if base is not None:
            return "clip", base
    if "video" in tried:
        subjects = _subject_dirs(root)
        if subjects:
            return "video", subjects
    raise AnnotationError(
        f"no CAS(ME)^3 frames under {root} for modality {modality!r}: tried "
        f"{'; '.join(f'{k} layout {LAYOUTS[k]}' for k in tried)}. {root} holds: {describe_dir(root)}"
    )


def load(root, annotation=None, *, modality: str = "color", apex_rule: str = "middle", layout: str = "auto"):
    """Read CAS(ME)^3 part A micro-expressions from ``root``. Returns ``(samples, failures)``."""
    root = Path(root)
    path, table = read_annotation(
        root,
        annotation,
        ANNOTATION_PATTERNS,
        COLUMNS,
        REQUIRED,
        what="CAS(ME)^3 part A label",
        apex_rule=apex_rule,
        max_depth=5,
    )
    kind, where = find_layout(root, layout, modality)
    rows = [(n, r) for n, r in table.rows if not (table.has("type") and r.get("type") and not _is_micro(r["type"]))]
    ctx = SheetRows(NAME, path, apex_rule, fps=FPS, first_frame=FIRST_FRAME)

    def folder_of(row, ref) -> Path:
        if kind == "clip":
            return child_dir(where, ref.sample_id, root, what="clip")
        sdir = where.get(ref.subject.lower())
        if sdir is None:
            raise RowError(f"subject folder {ref.subject!r} not found under {root}", "folder_not_found")
        folder = child_dir(sdir, row["filename"], root, what="video")
        mod = next((c for c in folder.iterdir() if c.is_dir() and c.name.lower() == modality.lower()), None)
        if mod is not None:
            return mod
        if any(c.is_dir() for c in folder.iterdir()):
            raise RowError(f"no {modality!r} folder in {folder}", "folder_not_found")
        return folder

    def build(row, ref):
        numbers = row_frames(row)
        sheet_apex(*numbers, fps=FPS, first_frame=FIRST_FRAME, dataset=NAME)  # before any folder is looked for
        extra = ctx.extra(row, filename=row["filename"])
        return ctx.sample(ref, row, folder_of(row, ref), numbers, extra, emotion=row["emotion"].lower())

    return collect_rows(
        NAME,
        path,
        rows,
        build,
        lambda rowno, row: (row["subject"], sample_id(row)),
        sheet=table.sheet,
        skipped=len(table.rows) - len(rows),
    )
