"""Label maps: native emotions to the classes a protocol trains on, and the MEGC 2019 composite.

Maps by name (:data:`LABEL_MAPS`):

* ``native``: the datasets' own emotions, sorted (every emotion the datasets present define, plus
  any other emotion found in the samples);
* ``casme2-5class``: happiness, disgust, repression, surprise, others (fear, sadness dropped);
* ``samm-5class``: happiness, anger, contempt, surprise, others (SAMM ``Other`` -> others;
  disgust, fear, sadness dropped);
* ``megc2019-3class``: negative <- CASME II disgust, repression; SAMM anger, contempt, disgust,
  fear, sadness; SMIC negative. positive <- happiness, SMIC positive. surprise <- surprise.
  Dropped: CASME II fear, sadness, others and SAMM other.

A map given as a dict: ``{"classes": [...], "map": {emotion: class}, "drop_unmapped": bool}``.
Map keys are emotions, optionally qualified by dataset (``"samm/fear"``), which wins over the
plain key; a value ``""`` drops that emotion. An emotion that is itself a class name maps to it.
Emotion matching ignores case and surrounding spaces and treats runs of spaces, ``_`` and ``-`` as
one space (``Happiness``, `` happiness ``, ``HAPPINESS`` all match ``happiness``).
"""
from __future__ import annotations

import csv
import dataclasses
import re
from collections import Counter
from pathlib import Path

from .errors import AnnotationError, Failure, MepipeError


class LabelMapError(MepipeError):
    """A label map is malformed, or an emotion has no class and drop_unmapped is false."""


def norm(text) -> str:
    """Emotion or class text lower-cased; runs of spaces, ``_`` and ``-`` folded to one space."""
    return re.sub(r"[\s_\-]+", " ", str(text or "").strip().lower()).strip()


def _dataset_family(dataset: str) -> str:
    """``smic-vis`` -> ``smic``: qualified map keys address a dataset family."""
    return norm(dataset).split(" ")[0].split("/")[0]


MEGC2019_CLASSES = ["negative", "positive", "surprise"]

LABEL_MAPS: dict[str, dict] = {
    "casme2-5class": {
        "classes": ["happiness", "disgust", "repression", "surprise", "others"],
        "map": {},
        "drop_unmapped": True,
    },
    "samm-5class": {
        "classes": ["happiness", "anger", "contempt", "surprise", "others"],
        "map": {"other": "others"},
        "drop_unmapped": True,
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
    },
}

#: MEGC 2019 composite reference counts (negative, positive, surprise) per source dataset.
MEGC2019_REFERENCE = {
    "smic": {"negative": 70, "positive": 51, "surprise": 43},
    "casme2": {"negative": 88, "positive": 32, "surprise": 25},
    "samm": {"negative": 92, "positive": 26, "surprise": 15},
}


def list_label_maps() -> list[str]:
    return ["native", *LABEL_MAPS]


def _native_classes(samples) -> list[str]:
    from .datasets import _module

    names = set()
    for ds in {s.dataset for s in samples}:
        try:
            mod = _module(_dataset_family(ds))
        except AnnotationError:
            continue
        names.update(norm(e) for e in mod.EMOTIONS)
    names.update(norm(s.emotion) for s in samples if norm(s.emotion))
    return sorted(names)


def resolve_spec(spec, samples=()) -> dict:
    """A label-map spec (a name or a dict) as ``{"classes", "map", "drop_unmapped"}``, validated."""
    if isinstance(spec, str):
        if spec == "native":
            classes = _native_classes(samples)
            return {"classes": classes, "map": {}, "drop_unmapped": False}
        if spec not in LABEL_MAPS:
            raise LabelMapError(f"unknown label map {spec!r}; available: {', '.join(list_label_maps())}")
        spec = LABEL_MAPS[spec]
    if not isinstance(spec, dict):
        raise LabelMapError(f"a label map is a name or a table with classes/map/drop_unmapped, not {type(spec).__name__}")
    if "classes" not in spec and "map" in spec and isinstance(spec["map"], str):
        return resolve_spec(spec["map"], samples)
    unknown = set(spec) - {"classes", "map", "drop_unmapped", "name"}
    if unknown:
        raise LabelMapError(f"label map has unknown key(s): {', '.join(sorted(unknown))}")
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
    return {"classes": classes, "map": m, "drop_unmapped": bool(spec.get("drop_unmapped", True))}


def class_of(sample, resolved: dict):
    """Class name of a sample under a resolved map, or None when it is dropped."""
    emo = norm(sample.emotion)
    fam = _dataset_family(sample.dataset)
    m = resolved["map"]
    by_norm = {norm(c): c for c in resolved["classes"]}
    for key in (f"{fam}/{emo}", emo):
        if key in m:
            return by_norm[m[key]] if m[key] else None
    if emo in by_norm:
        return by_norm[emo]
    if resolved["drop_unmapped"]:
        return None
    raise LabelMapError(
        f"emotion {sample.emotion!r} of {sample.key} has no class in {resolved['classes']} (drop_unmapped is false)"
    )


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
        kept.append(dataclasses.replace(s, label=idx[c], extra=dict(s.extra)))
    return list(r["classes"]), kept


def label_for_run(samples, spec):
    """Labels for a preprocessing run: ``(classes, kept, failures, excluded)``.

    - a sample the map drops on purpose (e.g. ``others`` under ``megc2019-3class``) is excluded
      and counted in ``excluded`` (a dict class -> count), not reported as a failure;
    - a sample whose emotion the map cannot place (``drop_unmapped = false``) is a
      ``Failure(stage="annotation")`` naming the sample, and the batch goes on;
    - under ``native`` a sample with no emotion is kept, unlabelled (label -1).
    """
    from .errors import Failure

    samples = list(samples)
    r = resolve_spec(spec, samples)
    idx = {c: i for i, c in enumerate(r["classes"])}
    kept, failures, excluded = [], [], {}
    for s in samples:
        if spec == "native" and not norm(s.emotion):
            kept.append(dataclasses.replace(s, label=-1, extra=dict(s.extra)))
            continue
        try:
            c = class_of(s, r)
        except LabelMapError as e:
            failures.append(Failure(s.key, "annotation", f"sample {s.key} ({s.source}): {e}; sample left out"))
            continue
        if c is None:
            k = s.emotion or "(no emotion)"
            excluded[k] = excluded.get(k, 0) + 1
            continue
        kept.append(dataclasses.replace(s, label=idx[c], extra=dict(s.extra)))
    return list(r["classes"]), kept, failures, excluded


def labels_from_recipe(recipe: dict):
    """The label-map spec of a recipe's ``[labels]`` section (``map = "name"`` or inline classes/map)."""
    sec = dict(recipe.get("labels", {}) or {})
    if not sec:
        return "native"
    if "classes" in sec:
        return {k: v for k, v in sec.items() if k in ("classes", "map", "drop_unmapped")}
    if isinstance(sec.get("map"), str):
        return sec["map"]
    raise LabelMapError("recipe [labels] needs map = \"<name>\" or classes = [...] with a [labels.map] table")


def count_classes(classes, samples) -> dict[str, int]:
    """Samples per class name (every class present, zero where none)."""
    c = Counter(s.label for s in samples)
    return {name: c.get(i, 0) for i, name in enumerate(classes)}


# ---------------------------------------------------------------------------------------------
# MEGC 2019 ground-truth list


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
            failures.append(Failure(f"megc2019/line{lineno}", "annotation", f"{path} line {lineno}: expected dataset,subject,filename,label; got {rec}"))
            continue
        ds, subj, fname, lab = rec[:4]
        try:
            label = int(float(lab))
            if label not in (0, 1, 2):
                raise ValueError
        except ValueError:
            if lineno == 1:
                continue  # a header line
            failures.append(Failure(f"{ds}/{subj}/{fname}", "annotation", f"{path} line {lineno}: label {lab!r} is not 0, 1 or 2"))
            continue
        rows.append((lineno, ds.lower(), subj, fname, label))
    if not rows and not failures:
        raise AnnotationError(f"MEGC 2019 ground-truth file has no rows: {path}")
    return rows, failures


def select_composite(samples_by_dataset, gt_csv):
    """Select exactly the MEGC 2019 composite samples listed in ``gt_csv``.

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
        index.setdefault((_dataset_family(s.dataset), _subject_key(s.subject), _key(s.sample_id)), s)
    rows, failures = read_megc2019_gt(gt_csv)
    mapper = resolve_spec("megc2019-3class")
    selected, seen = [], {}
    for lineno, ds, subj, fname, label in rows:
        k = (_dataset_family(ds), _subject_key(subj), _key(fname))
        ref = f"{ds}/{subj}/{fname}"
        if k in seen:
            failures.append(Failure(ref, "annotation", f"{gt_csv} line {lineno}: {ref} listed twice (first at line {seen[k]})"))
            continue
        s = index.get(k)
        if s is None:
            failures.append(Failure(ref, "annotation", f"{gt_csv} line {lineno}: {ref} is in the MEGC 2019 list but not in the loaded samples"))
            continue
        seen[k] = lineno
        extra = dict(s.extra)
        extra["megc2019_line"] = str(lineno)
        mapped = class_of(s, mapper)
        if mapped != MEGC2019_CLASSES[label]:
            extra["megc2019_note"] = f"list says {MEGC2019_CLASSES[label]}, emotion {s.emotion!r} maps to {mapped or 'nothing'}"
        selected.append(dataclasses.replace(s, label=label, extra=extra))
    return list(MEGC2019_CLASSES), selected, failures
