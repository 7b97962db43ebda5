"""SMIC (Li et al., 2013, University of Oulu): HS (164 micro-expressions of 16 subjects), VIS and
NIR (71 each of 8 subjects). Frame rates (:data:`FPS`): HS 100 fps, VIS and NIR 25 fps.

Two releases are read:

* **SMIC (original)**: point ``root`` at the folder holding ``HS`` (or ``VIS``/``NIR``; also found
  one or two levels down, e.g. ``SMIC_all_raw/HS``). Clips are
  ``HS/s1/micro/{negative,positive,surprise}/s1_ne_01/reg_image<digits>.bmp`` (or
  ``image<digits>.bmp``); each folder holds exactly the micro-expression, so onset is its first
  frame, offset its last, and the label is the ``negative``/``positive``/``surprise`` folder. There
  is no sheet. A clip whose name code (``_ne_``) disagrees with its folder gets a ``contradiction``
  note (the folder is used).
* **SMIC-E (extended)**: when ``SMIC-HS-E_annotation.xlsx`` (``SMIC-VIS-E``/``SMIC-NIR-E`` for the
  other subsets, or any ``SMIC-*-E_annotation`` workbook with a sheet named after the subset: the
  published workbook holds sheets ``HS`` and ``VIS``) is found under ``root`` or passed as
  ``annotation=``, its rows (Subject, Filename, OnsetF, OffsetF, optional Onset2F/Offset2F and
  Emotion) give the onset/offset *file numbers* within the long clips
  ``HS_long/SMIC-HS-E/s01/s1_ne_01/image<digits>.jpg``; the emotion comes from the Emotion column
  or from the ``_po_``/``_ne_``/``_sur_`` code of the filename. A row whose Emotion contradicts the
  name's code (``s18_sur_03`` is ``negative`` in the published sheet) gets a ``contradiction`` note
  (the sheet's emotion is used). A second interval (Onset2F/Offset2F) is never ignored: option
  ``second_interval = "note"`` (default) notes it on the sample, ``"sample"`` also loads it as its
  own sample ``<Filename>_2``.

No release gives an apex. ``apex_rule`` chooses it: ``middle`` (default: onset + (offset-onset)//2)
or ``max-motion`` (the frame whose grey image differs most from the onset frame, mean absolute
difference: a cheap proxy for the moment of largest motion). Samples are marked
``apex_estimated``. The dataset name is ``smic`` for HS and ``smic-vis``/``smic-nir`` otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import AnnotationError
from .apex import check_apex_rule
from .cells import RowError, clean_cell, norm_emotion, parse_frame_number
from .clips import resolve_clip
from .files import annotation_candidates, child_dir, find_annotation, find_dirs, subject_dir
from .rows import RowCollector, SheetRows, row_frames, run_rows
from .tables import read_table, sheet_names

NAME = "smic"
FPS = {"HS": 100, "VIS": 25, "NIR": 25}
#: SMIC annotates no Action Units: its samples' AU vectors are unknown (``Sample.aus_known`` false)
AUS_ANNOTATED = False
DESCRIPTION = "SMIC HS/VIS/NIR: 164 (HS) micro-expressions, labels negative/positive/surprise, no apex"
EMOTIONS = ("negative", "positive", "surprise")
SUBSETS = ("HS", "VIS", "NIR")
EXPECTS = (
    "HS/s1/micro/{negative,positive,surprise}/s1_ne_01/reg_image<n>.bmp (SMIC), or "
    "SMIC-HS-E_annotation.xlsx with s01/s1_ne_01/image<n>.jpg (SMIC-E)"
)
CODES = {"ne": "negative", "po": "positive", "sur": "surprise", "su": "surprise", "neg": "negative", "pos": "positive"}
COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetF", "Onset Frame", "OnsetFrame", "Onset"),
    "offset": ("OffsetF", "Offset Frame", "OffsetFrame", "Offset"),
    "onset2": ("Onset2F", "OnsetF2"),
    "offset2": ("Offset2F", "OffsetF2"),
    "apex": ("ApexF", "Apex Frame", "ApexFrame", "Apex"),
    "emotion": ("Emotion", "Estimated Emotion", "Class"),
}
REQUIRED = ("subject", "filename", "onset", "offset")
NO_APEX = "SMIC gives no apex"
SECOND_INTERVAL = ("note", "sample")


def dataset_name(subset: str) -> str:
    return NAME if subset == "HS" else f"{NAME}-{subset.lower()}"


def _subset(subset: str) -> str:
    s = str(subset).upper()
    if s not in SUBSETS:
        raise AnnotationError(f"unknown SMIC subset {subset!r}; use one of {', '.join(SUBSETS)}")
    return s


def _emotion_from_name(name: str) -> str:
    parts = re.split(r"[_\-]", name.lower())
    for p in parts[1:]:
        if p in CODES:
            return CODES[p]
    return ""


def _subset_sheet(path: Path, subset: str):
    """The workbook sheet named after ``subset`` (case-insensitive), else the first sheet."""
    return next((n for n in sheet_names(path) if n.strip().upper() == subset), 0)


def find_sheet(root: Path, annotation, subset: str) -> tuple[Path, object] | None:
    """The SMIC-E annotation file and sheet for ``subset``: ``annotation`` if given, else
    ``SMIC-<subset>-E_annotation*``, else any ``SMIC*E_annotation*`` workbook with a sheet named
    ``subset``; None when there is none."""
    what = f"SMIC-{subset}-E annotation"
    if annotation:
        path = find_annotation(root, (), annotation, what=what)
        return path, _subset_sheet(path, subset)
    own = (f"SMIC-{subset}-E_annotation*.xls*", f"SMIC_{subset}_E_annotation*.xls*", f"SMIC-{subset}-E_annotation*.csv")
    for hits in annotation_candidates(root, own):
        if hits:
            return hits[-1], _subset_sheet(hits[-1], subset)
    for hits in annotation_candidates(root, ("SMIC*-E_annotation*.xls*", "SMIC*_E_annotation*.xls*")):
        for path in reversed(hits):
            sheet = _subset_sheet(path, subset)
            if sheet != 0:
                return path, sheet
    return None


def load(
    root,
    annotation=None,
    *,
    subset: str = "HS",
    apex_rule: str = "middle",
    release: str = "auto",
    second_interval: str = "note",
):
    """Read SMIC from ``root``. Returns ``(samples, failures)``.

    ``release``: ``auto`` (SMIC-E when its annotation file is found or given, else the original
    folder layout), ``original`` or ``extended``. ``second_interval`` (SMIC-E): ``note`` or ``sample``.
    """
    root = Path(root)
    subset = _subset(subset)
    check_apex_rule(apex_rule)
    if release not in ("auto", "original", "extended"):
        raise AnnotationError(f"unknown SMIC release {release!r}; use auto, original or extended")
    if second_interval not in SECOND_INTERVAL:
        raise AnnotationError(f"unknown second_interval {second_interval!r}; use {' or '.join(SECOND_INTERVAL)}")
    if not root.is_dir():
        raise AnnotationError(f"dataset root is not a folder: {root}")
    found = find_sheet(root, annotation, subset) if release != "original" else None
    if found is not None:
        result = _load_extended(root, *found, subset, apex_rule, second_interval)
    elif release == "extended":
        raise AnnotationError(
            f"no SMIC-{subset}-E annotation file under {root} (SMIC-{subset}-E_annotation*.xlsx, "
            f"or a SMIC-*-E_annotation workbook with a sheet {subset!r}); pass --annotation FILE"
        )
    else:
        result = _load_original(root, subset, apex_rule)
    for s in result.samples:
        s.aus_known = AUS_ANNOTATED
    return result


def _load_original(root: Path, subset: str, apex_rule: str):
    dirs = [d for d in find_dirs(root, [subset], max_depth=3) if any(c.is_dir() for c in d.iterdir())]
    if not dirs:
        raise AnnotationError(f"no SMIC {subset} folder under {root} (expected {subset}/s1/micro/negative/s1_ne_01/)")
    base = dirs[0]
    name = dataset_name(subset)
    col = RowCollector(name, base)
    for sdir in sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
        micro = next((c for c in sdir.iterdir() if c.is_dir() and c.name.lower() == "micro"), None)
        if micro is None:
            continue
        for edir in sorted(p for p in micro.iterdir() if p.is_dir()):
            emotion = norm_emotion(edir.name)
            for clip in sorted(p for p in edir.iterdir() if p.is_dir()):
                col.rows += 1
                where = str(clip.relative_to(base))
                try:
                    if emotion not in EMOTIONS:
                        raise RowError(
                            f"emotion folder {edir.name!r} is not one of {', '.join(EMOTIONS)}", "unknown_emotion"
                        )
                    code = _emotion_from_name(clip.name)
                    notes = (
                        [("contradiction", f"clip name code says {code}, folder says {emotion}; folder used")]
                        if code and code != emotion
                        else []
                    )
                    sample = resolve_clip(
                        dataset=name,
                        subject=sdir.name,
                        sample_id=clip.name,
                        folder=clip,
                        onset=None,
                        apex=None,
                        offset=None,
                        emotion=emotion,
                        aus_text="",
                        apex_rule=apex_rule,
                        extra={"subset": subset, "release": "SMIC", "emotion_source": "folder"},
                        fps=FPS[subset],
                        apex_missing=NO_APEX,
                        notes=notes,
                        first_last_default=True,
                    )
                    col.add(where, sample)
                except RowError as e:
                    col.fail(where, sdir.name, clip.name, str(e), e.kind, where=str(clip))
    if not col.samples and not col.failures:
        raise AnnotationError(f"no SMIC clips under {base} (expected s1/micro/negative/s1_ne_01/)")
    return col.result(source=base)


def _load_extended(root: Path, path: Path, sheet, subset: str, apex_rule: str, second_interval: str):
    table = read_table(path, COLUMNS, REQUIRED, sheet=sheet)
    name = dataset_name(subset)
    # the long clips live in the folder holding s01, s02 ... next to (or below) the annotation
    candidates = [path.parent, *[d for d in find_dirs(root, [f"SMIC-{subset}-E", f"SMIC_{subset}_E", subset], 3)], root]
    base = next(
        (
            c
            for c in candidates
            if c.is_dir() and any(p.is_dir() and re.fullmatch(r"[sS]\d+", p.name) for p in c.iterdir())
        ),
        None,
    )
    if base is None:
        raise AnnotationError(f"no SMIC-E subject folders (s01, s02 ...) next to {path} or under {root}")
    ctx = SheetRows(name, path, apex_rule, fps=FPS[subset])

    def label(rowno, row):
        digits = re.sub(r"\D", "", row["subject"])
        return (f"s{int(digits)}" if digits else row["subject"]), row["filename"]

    def clip_and_emotion(row, fname):
        subj_raw = row["subject"]
        sdir = subject_dir(base, re.sub(r"\D", "", subj_raw) or subj_raw, root, prefixes=("s",), widths=(2, 1, 3))
        folder = child_dir(sdir, fname, root, what="clip")
        written, code = norm_emotion(row.get("emotion", "")), _emotion_from_name(fname)
        emotion = written or code
        if emotion not in EMOTIONS:
            raise RowError(
                f"emotion {clean_cell(row.get('emotion', '')) or fname!r} is not one of {', '.join(EMOTIONS)}",
                "unknown_emotion",
            )
        notes = (
            [
                (
                    "contradiction",
                    f"the sheet's emotion is {written}, the clip name {fname} says {code}; the sheet's emotion is used",
                )
            ]
            if written and code and written != code
            else []
        )
        return folder, emotion, notes

    def second(row):
        return [clean_cell(row.get(k, "")) for k in ("onset2", "offset2")]

    def build(row, ref):
        fname = ref.sample_id
        folder, emotion, notes = clip_and_emotion(row, fname)
        on2, off2 = second(row)
        if on2 or off2:
            how = (
                f"loaded as {fname}_2"
                if second_interval == "sample"
                else f"not loaded (option second_interval = sample loads it as {fname}_2)"
            )
            notes.append(
                ("second_interval", f"the sheet also gives Onset2F..Offset2F {on2 or '?'}..{off2 or '?'}, {how}")
            )
        extra = ctx.extra(row, subset=subset, release="SMIC-E")
        return ctx.sample(ref, row, folder, row_frames(row), extra, emotion=emotion, notes=notes, apex_missing=NO_APEX)

    def build_second(row, ref):
        fname = ref.sample_id[:-2]
        folder, emotion, notes = clip_and_emotion(row, fname)
        numbers = (
            parse_frame_number(row["onset2"], "second onset frame (Onset2F)"),
            None,
            parse_frame_number(row["offset2"], "second offset frame (Offset2F)"),
        )
        notes.append(("second_interval", f"second interval of {fname}: Onset2F..Offset2F {numbers[0]}..{numbers[2]}"))
        extra = ctx.extra(row, subset=subset, release="SMIC-E", interval="2")
        return ctx.sample(ref, row, folder, numbers, extra, emotion=emotion, notes=notes, apex_missing=NO_APEX)

    col = RowCollector(name, path)
    run_rows(col, table.rows, build, label)
    if second_interval == "sample":
        rows2 = [(n, r) for n, r in table.rows if any(second(r))]
        run_rows(col, rows2, build_second, lambda n, r: (label(n, r)[0], f"{r['filename']}_2"), count=False)
    return col.result(sheet=table.sheet)
