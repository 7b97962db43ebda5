"""SMIC (Li et al., 2013, University of Oulu): HS (100 fps, 164 micro-expressions of 16 subjects),
VIS and NIR (25 fps, 71 each of 8 subjects).

Two releases are read:

* **SMIC (original)**: point ``root`` at the folder holding ``HS`` (or ``VIS``/``NIR``; also found
  one or two levels down, e.g. ``SMIC_all_raw/HS``). Clips are
  ``HS/s1/micro/{negative,positive,surprise}/s1_ne_01/reg_image<digits>.bmp`` (or
  ``image<digits>.bmp``); each folder holds exactly the micro-expression, so onset is its first
  frame, offset its last, and the label is the ``negative``/``positive``/``surprise`` folder.
* **SMIC-E (extended)**: when ``SMIC-HS-E_annotation.xlsx`` (``SMIC-VIS-E``/``SMIC-NIR-E`` for the
  other subsets) is found under ``root`` or passed as ``annotation=``, its rows (Subject,
  Filename, OnsetF, OffsetF, optional Emotion) give the onset/offset *file numbers* within the
  long clips ``s01/s1_ne_01/image<digits>.jpg``; the emotion comes from the Emotion column or
  from the ``_po_``/``_ne_``/``_sur_`` code of the filename.

No release gives an apex. ``apex_rule`` chooses it: ``middle`` (default: onset + (offset-onset)//2)
or ``max-motion`` (the frame whose grey image differs most from the onset frame, mean absolute
difference: a cheap proxy for the moment of largest motion). Samples are marked
``apex_estimated``. The dataset name is ``smic`` for HS and ``smic-vis``/``smic-nir`` otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import AnnotationError, Failure
from .common import (
    RowCollector,
    RowError,
    check_apex_rule,
    child_dir,
    clean_cell,
    collect_rows,
    find_annotation,
    find_dirs,
    norm_emotion,
    read_table,
    resolve_clip,
    row_frames,
    sheet_extra,
    sheet_sample,
    subject_dir,
)

NAME = "smic"
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
    "apex": ("ApexF", "Apex Frame", "ApexFrame", "Apex"),
    "emotion": ("Emotion", "Estimated Emotion", "Class"),
}
REQUIRED = ("subject", "filename", "onset", "offset")


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


def load(root, annotation=None, *, subset: str = "HS", apex_rule: str = "middle", release: str = "auto"):
    """Read SMIC from ``root``. Returns ``(samples, failures)``.

    ``release``: ``auto`` (SMIC-E when its annotation file is found or given, else the original
    folder layout), ``original`` or ``extended``.
    """
    root = Path(root)
    subset = _subset(subset)
    check_apex_rule(apex_rule)
    if release not in ("auto", "original", "extended"):
        raise AnnotationError(f"unknown SMIC release {release!r}; use auto, original or extended")
    if not root.is_dir():
        raise AnnotationError(f"dataset root is not a folder: {root}")
    patterns = (f"SMIC-{subset}-E_annotation*.xls*", f"SMIC_{subset}_E_annotation*.xls*", f"SMIC-{subset}-E_annotation*.csv")
    if release == "extended" or annotation:
        path = find_annotation(root, patterns, annotation, what=f"SMIC-{subset}-E annotation")
        return _load_extended(root, path, subset, apex_rule)
    if release == "auto":
        try:
            path = find_annotation(root, patterns, None, what=f"SMIC-{subset}-E annotation")
        except AnnotationError:
            path = None
        if path is not None:
            return _load_extended(root, path, subset, apex_rule)
    return _load_original(root, subset, apex_rule)


def _load_original(root: Path, subset: str, apex_rule: str):
    dirs = [d for d in find_dirs(root, [subset], max_depth=3) if any(c.is_dir() for c in d.iterdir())]
    if not dirs:
        raise AnnotationError(f"no SMIC {subset} folder under {root} (expected {subset}/s1/micro/negative/s1_ne_01/)")
    base = dirs[0]
    name = dataset_name(subset)
    col = RowCollector(name, base)
    rowno = 0
    for sdir in sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
        micro = next((c for c in sdir.iterdir() if c.is_dir() and c.name.lower() == "micro"), None)
        if micro is None:
            continue
        for edir in sorted(p for p in micro.iterdir() if p.is_dir()):
            emotion = norm_emotion(edir.name)
            for clip in sorted(p for p in edir.iterdir() if p.is_dir()):
                rowno += 1
                try:
                    if emotion not in EMOTIONS:
                        raise RowError(f"emotion folder {edir.name!r} is not one of {', '.join(EMOTIONS)}")
                    code = _emotion_from_name(clip.name)
                    extra = {"subset": subset, "release": "SMIC", "emotion_source": "folder"}
                    if code and code != emotion:
                        extra["note"] = f"clip name code says {code}, folder says {emotion}; folder used"
                    sample = resolve_clip(
                        dataset=name, subject=sdir.name, sample_id=clip.name, folder=clip, onset=None, apex=None,
                        offset=None, emotion=emotion, aus_text="", apex_rule=apex_rule, extra=extra,
                        first_last_default=True,
                    )
                    col.add(str(clip.relative_to(base)), sample)
                except RowError as e:
                    col.failures.append(Failure(f"{name}/{sdir.name}/{clip.name}", "annotation", f"{clip}: {e}"))
    if not col.samples and not col.failures:
        raise AnnotationError(f"no SMIC clips under {base} (expected s1/micro/negative/s1_ne_01/)")
    return col.samples, col.failures


def _load_extended(root: Path, path: Path, subset: str, apex_rule: str):
    table = read_table(path, COLUMNS, REQUIRED)
    name = dataset_name(subset)
    # the long clips live in the folder holding s01, s02 ... next to (or below) the annotation
    candidates = [path.parent, *[d for d in find_dirs(root, [f"SMIC-{subset}-E", f"SMIC_{subset}_E", subset], 3)], root]
    base = next((c for c in candidates if c.is_dir() and any(p.is_dir() and re.fullmatch(r"[sS]\d+", p.name) for p in c.iterdir())), None)
    if base is None:
        raise AnnotationError(f"no SMIC-E subject folders (s01, s02 ...) next to {path} or under {root}")
    cache: dict = {}

    def label(rowno, row):
        digits = re.sub(r"\D", "", row["subject"])
        return (f"s{int(digits)}" if digits else row["subject"]), row["filename"]

    def build(row, ref):
        subj_raw, fname = row["subject"], ref.sample_id
        sdir = subject_dir(base, re.sub(r"\D", "", subj_raw) or subj_raw, root, prefixes=("s",), widths=(2, 1, 3))
        folder = child_dir(sdir, fname, root, what="clip")
        numbers = row_frames(row)
        emotion = norm_emotion(row.get("emotion", "")) or _emotion_from_name(fname)
        if emotion not in EMOTIONS:
            written = clean_cell(row.get("emotion", "")) or fname
            raise RowError(f"emotion {written!r} is not one of {', '.join(EMOTIONS)}")
        extra = sheet_extra(path, row, subset=subset, release="SMIC-E")
        return sheet_sample(name, ref, row, folder, numbers, extra, apex_rule=apex_rule, cache=cache, emotion=emotion)

    return collect_rows(name, path, table.rows, build, label)
