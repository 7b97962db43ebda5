"""Label maps: a dataset's native annotation to the classes a protocol trains on, chosen at training
time (a cache holds every annotated sample with its native emotion and objective class); and the
MEGC 2019 composite, selected exactly.

Maps by name (:data:`LABEL_MAPS`, each with its classes and where the protocol comes from):

* ``native``: the emotions present, as the datasets write them (case and spacing folded), sorted;
* ``casme2-5class``, ``samm-5class``: the five-class protocols (FaceSleuth, most MER papers);
* ``mmew-4class``: MMEW in four classes (see its entry: the FaceSleuth paper does not name them);
* ``megc2019-3class``: negative / positive / surprise of the MEGC 2019 composite;
* ``casme3-3class``, ``casme3-4class``, ``casme3-7class``: CAS(ME)^3 part A as its authors'
  benchmark groups it;
* ``objective``: Davison et al.'s objective classes I-V (from the sheets' ``Objective Class``).

A map given as a dict: ``{"classes": [...], "map": {emotion: class}, "drop_unmapped": bool,
"column": "emotion" | "objective"}``. Map keys are values of ``column``, optionally qualified by
dataset family (``"samm/fear"``), which wins over the plain key; a value ``""`` drops that value.
A value that is itself a class name maps to it. Matching ignores case and surrounding spaces and
treats runs of spaces, ``_`` and ``-`` as one space. Objective classes written as numbers (SAMM's
``1``..``7``) are read as the Roman numerals the other sheets use.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from collections import Counter, namedtuple
from pathlib import Path

import numpy as np

from .errors import AnnotationError, Failure, MepipeError


class LabelMapError(MepipeError):
    """A label map is malformed, or a value has no class and drop_unmapped is false."""


def norm(text) -> str:
    """Emotion or class text lower-cased; runs of spaces, ``_`` and ``-`` folded to one space."""
    return re.sub(r"[\s_\-]+", " ", str(text or "").strip().lower()).strip()


def dataset_family(dataset: str) -> str:
    """``smic-vis`` -> ``smic``: one family per dataset whatever the camera (its people are the same)."""
    return norm(dataset).split(" ")[0].split("/")[0]


_ROMAN = {str(i): r for i, r in enumerate(("I", "II", "III", "IV", "V", "VI", "VII"), start=1)}


def objective_class(text) -> str:
    """An objective class as a Roman numeral (``"3"`` -> ``"III"``; ``"iv"`` -> ``"IV"``), ``""`` if none."""
    s = str(text or "").strip()
    return _ROMAN.get(s, s.upper())


MEGC2019_CLASSES = ["negative", "positive", "surprise"]

LABEL_MAPS: dict[str, dict] = {
    "casme2-5class": {
        "classes": ["happiness", "disgust", "repression", "surprise", "others"],
        "map": {},
        "drop_unmapped": True,
        "source": "CASME II five-class protocol (FaceSleuth §4.1 and most MER papers): fear and sadness "
        "(2 and 7 clips) dropped.",
    },
    "samm-5class": {
        "classes": ["happiness", "anger", "contempt", "surprise", "others"],
        "map": {"other": "others"},
        "drop_unmapped": True,
        "source": "SAMM five-class protocol (FaceSleuth §4.1: 'consistent with standard practice'): SAMM's "
        "Other is others; disgust, fear and sadness (9, 8, 6 clips) dropped.",
    },
    "mmew-4class": {
        "classes": ["happiness", "surprise", "disgust", "others"],
        "map": {},
        "drop_unmapped": True,
        "source": "The FaceSleuth paper evaluates MMEW 'four-class' (§4.4) without naming the classes. mepipe's "
        "choice, by the rule of the CASME II and SAMM five-class protocols (keep the classes with "
        "enough clips, drop the small ones): happiness (36 clips), surprise (89), disgust (72), "
        "others (66); anger (8), fear (16) and sadness (13) dropped. Give your own map as JSON if "
        "your reference groups them otherwise.",
    },
    "megc2019-3class": {
        "classes": MEGC2019_CLASSES,
        "map": {
            "casme2/disgust": "negative",
            "casme2/repression": "negative",
            "casme2/happiness": "positive",
            "casme2/surprise": "surprise",
            "samm/anger": "negative",
            "samm/contempt": "negative",
            "samm/disgust": "negative",
            "samm/fear": "negative",
            "samm/sadness": "negative",
            "samm/happiness": "positive",
            "samm/surprise": "surprise",
            "smic/negative": "negative",
            "smic/positive": "positive",
            "smic/surprise": "surprise",
        },
        "drop_unmapped": True,
        "source": "MEGC 2019 composite (See et al., FG 2019): negative <- CASME II disgust, repression; SAMM "
        "anger, contempt, disgust, fear, sadness; SMIC negative. positive <- happiness. surprise <- "
        "surprise. The composite's membership is selected by select_megc2019.",
    },
    "casme3-3class": {
        "classes": MEGC2019_CLASSES,
        "map": {
            "casme3/disgust": "negative",
            "casme3/fear": "negative",
            "casme3/anger": "negative",
            "casme3/sad": "negative",
            "casme3/happy": "positive",
            "casme3/surprise": "surprise",
        },
        "drop_unmapped": True,
        "source": "CAS(ME)^3 part A three-class benchmark (Li et al., TPAMI 2022; AHMSA-Net Table 1): negative "
        "<- anger, disgust, fear, sad; positive <- happy; surprise. others dropped.",
    },
    "casme3-4class": {
        "classes": [*MEGC2019_CLASSES, "others"],
        "map": {
            "casme3/disgust": "negative",
            "casme3/fear": "negative",
            "casme3/anger": "negative",
            "casme3/sad": "negative",
            "casme3/happy": "positive",
            "casme3/surprise": "surprise",
            "casme3/others": "others",
        },
        "drop_unmapped": True,
        "source": "CAS(ME)^3 part A four-class benchmark (Li et al., TPAMI 2022): the three classes and others.",
    },
    "casme3-7class": {
        "classes": ["happy", "disgust", "fear", "anger", "sad", "surprise", "others"],
        "map": {},
        "drop_unmapped": True,
        "source": "CAS(ME)^3 part A seven-class benchmark (Li et al., TPAMI 2022): every emotion of the sheet.",
    },
    "objective": {
        "column": "objective",
        "classes": ["I", "II", "III", "IV", "V"],
        "map": {},
        "drop_unmapped": True,
        "source": "Objective classes I-V of Davison et al., 'Objective classes for micro-facial expression "
        "recognition' (J. Imaging 2018), from the sheets' Objective Class column (SAMM, CASME II "
        "2019, CAS(ME)^3); classes VI and VII (VII: others) are left out as in that paper.",
    },
}

#: MEGC 2019 composite reference counts (negative, positive, surprise) per source dataset.
MEGC2019_REFERENCE = {
    "smic": {"negative": 70, "positive": 51, "surprise": 43},
    "casme2": {"negative": 88, "positive": 32, "surprise": 25},
    "samm": {"negative": 92, "positive": 26, "surprise": 15},
}
#: subjects of the composite per source dataset (68 in all)
MEGC2019_SUBJECTS = {"smic": 16, "casme2": 24, "samm": 28}
#: datasets whose cameras record the same people and events: one modality per run
SAME_EVENTS = {"smic": ("smic", "smic-vis", "smic-nir")}


def list_label_maps() -> list[str]:
    return ["native", *LABEL_MAPS]


def describe_label_map(name: str) -> str:
    """Where a named map comes from (its ``source``)."""
    if name == "native":
        return "the emotions present in the samples, as their datasets write them"
    return LABEL_MAPS[name]["source"]


_Row = namedtuple("_Row", "key dataset emotion objective")


def _value(row, column: str) -> str:
    v = getattr(row, column, "") or ""
    return objective_class(v) if column == "objective" else str(v)


def resolve_spec(spec, rows=()) -> dict:
    """A label-map spec (a name or a dict) as ``{"name", "classes", "map", "drop_unmapped", "column"}``,
    validated. ``rows`` (anything with ``emotion``/``objective``) give ``native`` its classes."""
    name = spec if isinstance(spec, str) else None
    if isinstance(spec, str):
        if spec == "native":
            classes = sorted({norm(_value(r, "emotion")) for r in rows} - {""})
            return {"name": "native", "classes": classes, "map": {}, "drop_unmapped": False, "column": "emotion"}
        if spec not in LABEL_MAPS:
            raise LabelMapError(f"unknown label map {spec!r}; available: {', '.join(list_label_maps())}")
        spec = LABEL_MAPS[spec]
    if not isinstance(spec, dict):
        raise LabelMapError(
            f"a label map is a name or a table with classes/map/drop_unmapped, not {type(spec).__name__}"
        )
    if "classes" not in spec and "map" in spec and isinstance(spec["map"], str):
        return resolve_spec(spec["map"], rows)
    unknown = set(spec) - {"classes", "map", "drop_unmapped", "name", "column", "source"}
    if unknown:
        raise LabelMapError(f"label map has unknown key(s): {', '.join(sorted(unknown))}")
    column = spec.get("column", "emotion")
    if column not in ("emotion", "objective"):
        raise LabelMapError(f"a label map reads the emotion or the objective column, not {column!r}")
    classes = spec.get("classes")
    if not classes or not all(isinstance(c, str) and norm(c) for c in classes):
        raise LabelMapError("label map needs a non-empty list of class names under 'classes'")
    classes = [str(c).strip() for c in classes]
    if len({norm(c) for c in classes}) != len(classes):
        raise LabelMapError(f"label map repeats a class: {classes}")
    known = {norm(c) for c in classes}
    m = {}
    for k, v in dict(spec.get("map") or {}).items():
        key = "/".join(norm(p) for p in str(k).split("/", 1))
        val = norm(v)
        if val and val not in known:
            raise LabelMapError(f"label map sends {k!r} to {v!r}, which is not one of the classes {classes}")
        m[key] = val
    return {
        "name": name or str(spec.get("name", "custom")),
        "classes": classes,
        "map": m,
        "drop_unmapped": bool(spec.get("drop_unmapped", True)),
        "column": column,
    }


def class_of(row, resolved: dict):
    """Class name of a sample (or meta row) under a resolved map, or None when it is dropped."""
    val = norm(_value(row, resolved.get("column", "emotion")))
    fam = dataset_family(row.dataset)
    m = resolved["map"]
    by_norm = {norm(c): c for c in resolved["classes"]}
    for key in (f"{fam}/{val}", val):
        if key in m:
            return by_norm[m[key]] if m[key] else None
    if val in by_norm:
        return by_norm[val]
    if resolved["drop_unmapped"] or not val:
        return None
    raise LabelMapError(
        f"{resolved.get('column', 'emotion')} {val!r} of {row.key} has no class in {resolved['classes']} "
        f"(drop_unmapped is false)"
    )


def map_rows(meta, spec, min_classes: int = 2) -> tuple[str, list[str], list[int], dict]:
    """Apply label map ``spec`` to the rows of a cache meta table (columns key, dataset, emotion
    and, where the map reads it, objective).

    Returns ``(name, classes, y, resolved)``: ``y[i]`` is the class index of row ``i`` or -1 when
    the map drops it; ``resolved`` is the validated map (for results.json).
    """
    n = len(meta["key"])
    objective = meta["objective"] if "objective" in meta else [""] * n
    rows = [_Row(k, d, e, o) for k, d, e, o in zip(meta["key"], meta["dataset"], meta["emotion"], objective)]
    resolved = resolve_spec(spec, rows)
    classes = list(resolved["classes"])
    if len(classes) < min_classes:
        raise LabelMapError(f"label map {resolved['name']!r} gives fewer than {min_classes} classes ({classes})")
    index = {norm(c): i for i, c in enumerate(classes)}
    y = []
    for r in rows:
        c = class_of(r, resolved)
        y.append(-1 if c is None else index[norm(c)])
    return resolved["name"], classes, y, resolved


def apply_label_map(samples, spec):
    """Set ``Sample.label`` by a label map. Returns ``(classes, kept_samples)``.

    ``spec`` is a map name (:func:`list_label_maps`) or a dict (see module doc). Dropped samples are
    left out; kept ones are copies with ``label`` = index into ``classes``.
    """
    samples = list(samples)
    r = resolve_spec(spec, samples)
    idx = {c: i for i, c in enumerate(r["classes"])}
    kept = []
    for s in samples:
        c = class_of(s, r)
        if c is None:
            continue
        kept.append(dataclasses.replace(s, label=idx[c], extra=dict(s.extra), notes=list(s.notes)))
    return list(r["classes"]), kept


def count_classes(classes, samples) -> dict[str, int]:
    """Samples per class name (every class present, zero where none)."""
    c = Counter(s.label for s in samples)
    return {name: c.get(i, 0) for i, name in enumerate(classes)}


# ---------------------------------------------------------------------------------------------
# MEGC 2019 composite: membership by documented rules, or by the official list


def _key(text) -> str:
    s = str(text or "").strip().lower()
    return re.sub(r"\d+", lambda m: str(int(m.group(0))), s)


def _subject_key(text) -> str:
    """``sub01`` / ``s01`` / ``006`` / ``6`` -> the subject number as text; other names lower-cased."""
    s = str(text or "").strip().lower()
    m = re.fullmatch(r"(?:sub|s)?0*(\d+)", s)
    return str(int(m.group(1))) if m else s


def read_megc2019_gt(path):
    """Rows of an official ``combined_3class_gt*.csv``: ``(line, dataset, subject, filename, label)``.

    No header; a first line whose label is not a number is taken as a header and skipped.
    Returns ``(rows, failures)``; a malformed line is a Failure naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"MEGC 2019 ground-truth file not found: {path}")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows, failures = [], []
    for lineno, rec in enumerate(csv.reader(text.splitlines()), start=1):
        rec = [c.strip() for c in rec]
        if not any(rec):
            continue
        if len(rec) < 4:
            failures.append(
                Failure(
                    f"megc2019/line{lineno}",
                    "annotation",
                    f"{path} line {lineno}: expected dataset,subject,filename,label; got {rec}",
                )
            )
            continue
        ds, subj, fname, lab = rec[:4]
        try:
            label = int(float(lab))
            if label not in (0, 1, 2):
                raise ValueError
        except ValueError:
            if lineno == 1:
                continue  # a header line
            failures.append(
                Failure(f"{ds}/{subj}/{fname}", "annotation", f"{path} line {lineno}: label {lab!r} is not 0, 1 or 2")
            )
            continue
        rows.append((lineno, ds.lower(), subj, fname, label))
    if not rows and not failures:
        raise AnnotationError(f"MEGC 2019 ground-truth file has no rows: {path}")
    return rows, failures


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Why the rules leave out samples that the three-class map would keep (the official list has none of them).
COMPOSITE_RULES = {
    "casme2": "CASME II clips without an annotated apex (the sheet's '/', estimated by a rule) or whose apex is "
    "the onset frame are not in the MEGC 2019 list (on the 2014-05-08 sheet: sub04/EP12_01f and "
    "sub05/EP09_05f)",
    "samm": "every SAMM clip of the three classes (the two apex typos, 028_4_1 and 032_3_1, are members)",
    "smic": "every SMIC-HS clip (the original release: 164; SMIC-HS-E gives fewer, see docs/datasets.md)",
}


def megc2019_rules(meta) -> tuple[np.ndarray, dict[str, int]]:
    """Class index (0 negative, 1 positive, 2 surprise) of every row under the composite's rules,
    -1 for rows outside the composite; and why rows were left out, counted.

    ``meta`` columns: key, dataset, emotion, apex_estimated, onset, apex (a cache meta table)."""
    _, _, y, _ = map_rows(meta, "megc2019-3class")
    y = np.asarray(y, dtype=np.int64)
    left: Counter = Counter()
    datasets = [str(d) for d in meta["dataset"]]
    est = np.asarray(meta["apex_estimated"], dtype=bool)
    same = np.asarray(meta["onset"]) == np.asarray(meta["apex"])
    for i, d in enumerate(datasets):
        if d not in MEGC2019_REFERENCE:  # smic-vis / smic-nir, casme3 ...: not composite datasets
            left[f"{d}: not a composite dataset"] += 1
            y[i] = -1
            continue
        if y[i] < 0:
            left[f"{d}: emotion outside the three classes"] += 1
        elif d == "casme2" and (est[i] or same[i]):
            left[f"{d}: apex not annotated or equal to the onset"] += 1
            y[i] = -1
    return y, dict(left)


def megc2019_from_list(meta, gt_csv) -> tuple[np.ndarray, list[str]]:
    """Class index of every row from the official list (-1: not listed) and the list's lines that
    match no row, are listed twice, or are malformed."""
    index: dict[tuple[str, str, str], int] = {}
    for i, (d, s, f) in enumerate(zip(meta["dataset"], meta["subject"], meta["sample_id"])):
        index.setdefault((dataset_family(d) if d in MEGC2019_REFERENCE else str(d), _subject_key(s), _key(f)), i)
    rows, failures = read_megc2019_gt(gt_csv)
    problems = [f.reason for f in failures]
    y = np.full(len(meta["key"]), -1, dtype=np.int64)
    seen: dict[tuple, int] = {}
    for lineno, ds, subj, fname, label in rows:
        k = (ds, _subject_key(subj), _key(fname))
        if k in seen:
            problems.append(f"{gt_csv} line {lineno}: {ds}/{subj}/{fname} listed twice (first at line {seen[k]})")
            continue
        seen[k] = lineno
        i = index.get(k)
        if i is None:
            problems.append(f"{gt_csv} line {lineno}: {ds}/{subj}/{fname} is in the list but not in the caches")
            continue
        y[i] = label
    return y, problems


def select_megc2019(meta, gt_csv=None) -> tuple[np.ndarray, dict]:
    """The MEGC 2019 composite over the rows of ``meta``: ``(y, info)``.

    Membership and labels come from the documented rules (:data:`COMPOSITE_RULES`), or, with
    ``gt_csv`` (the official ``combined_3class_gt.csv``), from the list, with every row where the
    list and the rules disagree reported in ``info["disagreements"]``. ``info`` also holds the
    counts per dataset and class beside :data:`MEGC2019_REFERENCE`, the subjects, and
    ``matches_reference`` (every count equal, 442 samples, 68 subjects).
    """
    rules, left = megc2019_rules(meta)
    info: dict = {"membership": "rules", "left_out": left, "rules": COMPOSITE_RULES}
    if gt_csv is not None:
        listed, problems = megc2019_from_list(meta, gt_csv)
        keys = list(meta["key"])
        dis = []
        for i in np.flatnonzero(listed != rules):
            a, b = int(rules[i]), int(listed[i])
            dis.append(
                f"{keys[i]}: rules say {MEGC2019_CLASSES[a] if a >= 0 else 'not a member'}, "
                f"the list says {MEGC2019_CLASSES[b] if b >= 0 else 'not a member'}"
            )
        info.update(
            membership="list",
            list=str(gt_csv),
            list_sha256=file_sha256(gt_csv),
            list_problems=problems,
            disagreements=dis,
        )
        y = listed
    else:
        y = rules
    datasets = np.array([str(d) for d in meta["dataset"]], dtype=object)
    subjects = np.array([str(s) for s in meta["subject"]], dtype=object)
    counts = {
        d: {c: int(((datasets == d) & (y == i)).sum()) for i, c in enumerate(MEGC2019_CLASSES)}
        for d in MEGC2019_REFERENCE
    }
    subj = {d: int(len(set(subjects[(datasets == d) & (y >= 0)]))) for d in MEGC2019_REFERENCE}
    info.update(
        counts=counts,
        subjects=subj,
        reference=MEGC2019_REFERENCE,
        reference_subjects=MEGC2019_SUBJECTS,
        n=int((y >= 0).sum()),
        matches_reference=counts == MEGC2019_REFERENCE and subj == MEGC2019_SUBJECTS,
    )
    return y, info


def composite_table(info: dict) -> str:
    """The reference-versus-yours table of :func:`select_megc2019`'s ``info``."""
    lines = [
        f"MEGC 2019 composite ({info['membership']}): reference 442 samples, 68 subjects",
        f"{'dataset':<8} {'class':<9} {'reference':>9} {'yours':>7}",
    ]
    for d, ref in info["reference"].items():
        for c in MEGC2019_CLASSES:
            you = info["counts"][d][c]
            lines.append(f"{d:<8} {c:<9} {ref[c]:>9} {you:>7}" + ("" if you == ref[c] else "   <- differs"))
        rs, ys = info["reference_subjects"][d], info["subjects"][d]
        lines.append(f"{d:<8} {'subjects':<9} {rs:>9} {ys:>7}" + ("" if rs == ys else "   <- differs"))
    lines.append(f"{'total':<8} {'':<9} {442:>9} {info['n']:>7}")
    return "\n".join(lines)


def samples_table(samples) -> dict:
    """Samples as the columns :func:`select_megc2019` reads (for ``mepipe datasets --counts``)."""
    cols = ("key", "dataset", "subject", "sample_id", "emotion", "objective", "apex_estimated", "onset", "apex")
    return {c: [getattr(s, c) for s in samples] for c in cols}


def select_composite(samples_by_dataset, gt_csv):
    """Select exactly the MEGC 2019 composite samples listed in ``gt_csv`` (Samples, not caches).

    ``samples_by_dataset``: ``{"casme2": [...], "samm": [...], "smic": [...]}`` (or a flat list).
    Returns ``(classes, selected, failures)``: ``classes`` = negative, positive, surprise;
    ``selected`` = copies of the listed samples in list order with ``label`` from the list (0
    negative, 1 positive, 2 surprise); ``failures`` = list lines with no matching sample, duplicate
    lines and malformed lines. Subjects and filenames match ignoring case and leading zeros
    (``s01_ne_01`` == ``s1_ne_01``). Where the list disagrees with the ``megc2019-3class`` map of a
    sample's own emotion, the list wins and ``extra["megc2019_note"]`` says so.
    """
    if isinstance(samples_by_dataset, dict):
        flat = [s for v in samples_by_dataset.values() for s in v]
    else:
        flat = list(samples_by_dataset)
    index: dict[tuple[str, str, str], object] = {}
    for s in flat:
        index.setdefault((dataset_family(s.dataset), _subject_key(s.subject), _key(s.sample_id)), s)
    rows, failures = read_megc2019_gt(gt_csv)
    mapper = resolve_spec("megc2019-3class")
    selected, seen = [], {}
    for lineno, ds, subj, fname, label in rows:
        k = (dataset_family(ds), _subject_key(subj), _key(fname))
        ref = f"{ds}/{subj}/{fname}"
        if k in seen:
            failures.append(
                Failure(ref, "annotation", f"{gt_csv} line {lineno}: {ref} listed twice (first at line {seen[k]})")
            )
            continue
        s = index.get(k)
        if s is None:
            failures.append(
                Failure(
                    ref,
                    "annotation",
                    f"{gt_csv} line {lineno}: {ref} is in the MEGC 2019 list but not in the loaded samples",
                )
            )
            continue
        seen[k] = lineno
        extra = dict(s.extra)
        extra["megc2019_line"] = str(lineno)
        mapped = class_of(s, mapper)
        if mapped != MEGC2019_CLASSES[label]:
            extra["megc2019_note"] = (
                f"list says {MEGC2019_CLASSES[label]}, emotion {s.emotion!r} maps to {mapped or 'nothing'}"
            )
        selected.append(dataclasses.replace(s, label=label, extra=extra, notes=list(s.notes)))
    return list(MEGC2019_CLASSES), selected, failures
