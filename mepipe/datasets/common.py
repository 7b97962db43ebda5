"""Helpers shared by the dataset adapters.

* reading an annotation sheet (xlsx through openpyxl, xls through xlrd, csv) as raw text cells;
* finding the header row by its content (SAMM has a title block above it) and columns by their
  header text, never by position;
* cleaning cells (``/``, blanks, NaN, ``46.0``);
* locating the annotation file by its usual names and the frame folders inside the dataset root;
* turning a dataset's frame *numbers* (``img46.jpg`` is 46) into 0-based *positions* in the
  numerically sorted frame list, and checking onset/apex/offset against the frames on disk;
* the apex rules used where a dataset gives no apex (``middle`` and ``max-motion``).
* the row loop the sheet adapters share: each row becomes a Sample or one Failure naming the
  file, the row and the sample (:func:`collect_rows`, :func:`row_frames`, :func:`sheet_sample`).

Strings read from annotation files are data only: they are never evaluated, and any path built
from them is checked to stay inside the dataset root.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..aus import AUParseError, format_aus, parse_au_tokens
from ..errors import AnnotationError, Failure
from ..frames import FrameError, frame_number, list_frame_files
from ..sample import Sample

#: Cell values meaning "no value" in the annotation sheets (compared lower-cased, stripped).
MISSING = {"", "/", "-", "--", "nan", "none", "n/a", "na", "null", "?"}

APEX_RULES = ("middle", "max-motion")


class RowError(ValueError):
    """One annotation row cannot be used; the message says why (the caller adds file and row)."""


# ---------------------------------------------------------------------------------------------
# cells


def clean_cell(value) -> str:
    """A cell as stripped text: ``None``/NaN give ``""``, whole floats lose ``.0`` (``46.0`` -> ``46``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    s = str(value).replace("\u00a0", " ").strip()
    if s.lower() == "nan":
        return ""
    return s


def is_missing(text: str) -> bool:
    """True for the cells the datasets use to mean "no value" (blank, ``/``, ``-``, ``nan`` ...)."""
    return clean_cell(text).lower() in MISSING


def parse_frame_number(
    value, column: str, *, required: bool = True, negative_is_missing: bool = False, index: bool = False
):
    """Parse a frame-number cell. Blank or ``/`` give ``None`` (or RowError when ``required``).

    Accepts ``46``, ``46.0``, ``" 46 "``; refuses fractions, text and negatives (SAMM writes
    ``-1`` for an unknown apex: pass ``negative_is_missing=True`` there). With ``index=True`` the
    value is a 0-based frame index from a manifest: only an empty cell is missing (``/`` and
    ``nan`` are refused as not a number) and the messages speak of a frame index.
    """
    if index:
        s = str(value or "").strip()
        blank = s == ""
    else:
        s = clean_cell(value)
        blank = s.lower() in MISSING
    if blank:
        if required:
            raise RowError(f"{column} is empty")
        return None
    kind = "frame index" if index else "frame number"
    not_a_number = f"{column} is not a {'number' if index else kind}: {s!r}"
    try:
        f = float(s)
    except ValueError:
        raise RowError(not_a_number) from None
    if math.isnan(f) or math.isinf(f):
        raise RowError(not_a_number)
    if not f.is_integer():
        raise RowError(f"{column} is not a whole {kind}: {s!r}")
    if f < 0:
        if negative_is_missing:
            if required:
                raise RowError(f"{column} is unknown ({s})")
            return None
        raise RowError(f"{column} is negative: {s!r}")
    return int(f)


def norm_header(text) -> str:
    """Header text reduced to lower-case letters and digits (``"Onset Frame"`` -> ``onsetframe``)."""
    return re.sub(r"[^a-z0-9]", "", clean_cell(text).lower())


def norm_emotion(text) -> str:
    """Emotion text lower-cased with runs of spaces, ``_`` and ``-`` made one space."""
    return re.sub(r"[\s_\-]+", " ", clean_cell(text).lower()).strip()


def name_key(text) -> str:
    """Identifier compared loosely: lower case, digit runs without leading zeros (``s01_ne_01`` == ``s1_ne_1``)."""
    s = clean_cell(text).lower()
    return re.sub(r"\d+", lambda m: str(int(m.group(0))), s)


# ---------------------------------------------------------------------------------------------
# tables


@dataclass
class Table:
    """An annotation sheet after its header row was found.

    ``rows`` holds ``(sheet_row_number, {column_key: cell_text})`` for each non-blank row below the
    header (row numbers are 1-based, as a spreadsheet shows them). ``columns`` maps each column key
    that was found to the header text it was found under.
    """

    path: Path
    header_row: int
    columns: dict[str, str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.columns


def read_sheet(path: Path, sheet=0) -> list[list]:
    """All cells of a sheet (xlsx/xlsm via openpyxl, xls via xlrd) or a csv file, as a list of rows."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import pandas as pd

            df = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
        elif suffix == ".xls":
            import pandas as pd

            df = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="xlrd")
        elif suffix in (".csv", ".txt"):
            import csv
            import io

            raw = path.read_bytes()
            for enc in ("utf-8-sig", "cp1252", "latin-1"):
                try:
                    text = raw.decode(enc)
                    break
                except UnicodeDecodeError:
                    continue
            return [list(r) for r in csv.reader(io.StringIO(text))]
        else:
            raise AnnotationError(f"unsupported annotation format {suffix!r} (xlsx, xls or csv): {path}")
    except AnnotationError:
        raise
    except ImportError as e:
        raise AnnotationError(f"cannot read {path}: {e}") from None
    except Exception as e:  # openpyxl/xlrd raise many types for damaged files
        raise AnnotationError(f"cannot read annotation file {path}: {type(e).__name__}: {e}") from None
    return df.values.tolist()


def _match_column(header: str, aliases) -> bool:
    h = norm_header(header)
    if not h:
        return False
    return any(h == a or (len(a) >= 4 and h.startswith(a)) for a in aliases)


def read_table(path, spec: dict[str, tuple[str, ...]], required: tuple[str, ...], sheet=0, scan_rows: int = 60) -> Table:
    """Read an annotation sheet whose header row is found by content.

    ``spec`` maps a column key to header aliases (compared with :func:`norm_header`: case, spaces
    and punctuation ignored; an alias also matches a longer header that starts with it, for
    headers such as ``"Apex Frame (-1 = unknown)"``). The header row is the first of the first
    ``scan_rows`` rows holding every ``required`` column. Raises AnnotationError when no row does.
    """
    path = Path(path)
    cells = read_sheet(path, sheet)
    aliases = {k: tuple(norm_header(a) for a in v) for k, v in spec.items()}
    best = (0, None)
    for i, row in enumerate(cells[:scan_rows]):
        found = {}
        for j, c in enumerate(row):
            for key, al in aliases.items():
                if key not in found and _match_column(c, al):
                    found[key] = j
                    break
        if all(k in found for k in required):
            header_idx, colmap = i, found
            break
        if len(found) > best[0]:
            best = (len(found), (i, found))
    else:
        hint = ""
        if best[1] is not None:
            i, found = best[1]
            missing = [k for k in required if k not in found]
            hint = f"; closest row {i + 1} lacks {', '.join(missing)}"
        raise AnnotationError(
            f"annotation file {path}: no header row with columns {', '.join(required)} in its first {scan_rows} rows{hint}"
        )
    header = cells[header_idx]
    used = set(colmap.values())
    extra_cols = [(j, clean_cell(h)) for j, h in enumerate(header) if j not in used and clean_cell(h)]
    table = Table(
        path=path,
        header_row=header_idx + 1,
        columns={k: clean_cell(header[j]) for k, j in colmap.items()},
        extra_columns=[h for _, h in extra_cols],
    )
    for i in range(header_idx + 1, len(cells)):
        row = cells[i]
        values = {k: clean_cell(row[j]) if j < len(row) else "" for k, j in colmap.items()}
        extras = {h: clean_cell(row[j]) if j < len(row) else "" for j, h in extra_cols}
        if not any(values.values()):
            continue  # blank line or a footnote in an unmapped column
        values["_extra"] = {h: v for h, v in extras.items() if v}
        table.rows.append((i + 1, values))
    return table


# ---------------------------------------------------------------------------------------------
# files and folders


def find_annotation(root: Path, patterns: tuple[str, ...], override=None, max_depth: int = 4, what: str = "annotation") -> Path:
    """The annotation file: ``override`` (relative to ``root`` or absolute) or the first file under
    ``root`` (down to ``max_depth`` folders) whose name matches one of ``patterns``.

    Patterns are shell globs compared case-insensitively, tried in order; among several files for
    one pattern the last in name order wins (``...-20190701`` over ``...-20140508``).
    Raises AnnotationError naming the patterns when nothing is found.
    """
    import fnmatch

    root = Path(root)
    if override:
        p = Path(str(override))
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            raise AnnotationError(f"{what} file not found: {p}")
        return p
    if not root.is_dir():
        raise AnnotationError(f"dataset root is not a folder: {root}")
    files = []
    for p in _walk(root, max_depth):
        if p.is_file():
            files.append(p)
    for pat in patterns:
        hits = sorted((p for p in files if fnmatch.fnmatch(p.name.lower(), pat.lower())), key=lambda p: (p.name.lower(), str(p)))
        hits = [p for p in hits if not p.name.startswith("~$")]  # Excel lock files
        if hits:
            return hits[-1]
    raise AnnotationError(
        f"no {what} file under {root} (looked for {', '.join(patterns)} down to {max_depth} folders); "
        "pass --annotation FILE"
    )


def _walk(root: Path, max_depth: int):
    """Files and folders under ``root`` down to ``max_depth`` levels (symlinked folders not followed)."""
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for e in entries:
            yield e
            if e.is_dir() and not e.is_symlink() and depth + 1 < max_depth:
                stack.append((e, depth + 1))


def find_dirs(root: Path, names, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included) whose name is one of ``names`` (case-insensitive)."""
    want = {n.lower() for n in names}
    out = [root] if root.name.lower() in want else []
    out += [p for p in _walk(root, max_depth) if p.is_dir() and p.name.lower() in want]
    return out


def child_dir(parent: Path, name: str, root: Path, *, what: str) -> Path:
    """``parent/name`` for a ``name`` read from an annotation file, matched case-insensitively.

    The name must be one path component (no separators, no ``..``) and the result must stay inside
    ``root``; raises RowError naming the folder that is missing.
    """
    name = clean_cell(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise RowError(f"{what} {name!r} is not a plain folder name")
    p = parent / name
    if not p.is_dir():
        try:
            match = [c for c in parent.iterdir() if c.is_dir() and c.name.lower() == name.lower()]
        except OSError:
            match = []
        if not match:
            raise RowError(f"{what} folder not found: {p}")
        p = match[0]
    r = root.resolve()
    rp = p.resolve()
    if rp != r and r not in rp.parents:
        raise RowError(f"{what} folder {p} is outside the dataset root {r}")
    return p


def subject_dir(parent: Path, subject: str, root: Path, prefixes=("sub", "s", ""), widths=(2, 3, 1)) -> Path:
    """The folder of a subject written as a number or a name (``1`` -> ``sub01``/``s1``/``006``...).

    A subject holding letters is looked up as written; a number is tried with each prefix and
    zero-padded width, then any child folder whose name has the same number.
    """
    s = clean_cell(subject)
    if not s:
        raise RowError("subject is empty")
    if not s.isdigit():
        return child_dir(parent, s, root, what="subject")
    n = int(s)
    for pre in prefixes:
        for w in widths:
            p = parent / f"{pre}{n:0{w}d}"
            if p.is_dir():
                return child_dir(parent, p.name, root, what="subject")
    try:
        for c in sorted(parent.iterdir()):
            m = re.fullmatch(r"[A-Za-z]*0*(\d+)", c.name)
            if c.is_dir() and m and int(m.group(1)) == n:
                return child_dir(parent, c.name, root, what="subject")
    except OSError:
        pass
    raise RowError(f"subject folder for subject {s!r} not found in {parent}")


# ---------------------------------------------------------------------------------------------
# frames: numbers -> positions, validation


class FrameIndex:
    """The image files of one clip folder, numerically sorted, and their numbers."""

    _cache: dict[Path, "FrameIndex"] = {}

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        try:
            self.files = list_frame_files(self.folder)
        except FrameError as e:
            raise RowError(str(e)) from None
        self.numbers = [frame_number(p) for p in self.files]
        self.position: dict[int, int] = {}
        for i, (n, p) in enumerate(zip(self.numbers, self.files)):
            if n is None:
                continue
            if n in self.position:
                raise RowError(f"two frame files carry number {n} in {self.folder}: {self.files[self.position[n]].name}, {p.name}")
            self.position[n] = i

    def describe(self) -> str:
        nums = [n for n in self.numbers if n is not None]
        rng = f"numbers {min(nums)}..{max(nums)}" if nums else "no numbered files"
        return f"{len(self.files)} frames, {rng}"

    def pos(self, number: int, column: str) -> int:
        """Position of the file numbered ``number``; RowError naming the number when there is none."""
        if number not in self.position:
            raise RowError(f"{column} {number} has no frame file in {self.folder} ({self.describe()})")
        return self.position[number]


def resolve_clip(
    *,
    dataset: str,
    subject: str,
    sample_id: str,
    folder: Path,
    onset,
    apex,
    offset,
    emotion: str,
    aus_text: str,
    apex_rule: str,
    extra: dict,
    index_cache: dict | None = None,
    first_last_default: bool = False,
) -> Sample:
    """Build a validated :class:`Sample` from frame *numbers* (``None`` where the sheet has none).

    Checks: every given number has a file; onset <= apex <= offset; at least two frames. A missing
    apex is chosen by ``apex_rule`` between onset and offset (``apex_estimated=True``). With
    ``first_last_default`` a missing onset/offset means the first/last frame of the folder (SMIC).
    onset == apex is kept and flagged in ``extra``. Raises RowError with the reason.
    """
    if index_cache is not None and folder in index_cache:
        idx = index_cache[folder]
    else:
        idx = FrameIndex(folder)
        if index_cache is not None:
            index_cache[folder] = idx
    if len(idx.files) < 2:
        raise RowError(f"only {len(idx.files)} frame in {folder}; a clip needs at least onset and apex")
    extra = dict(extra)
    if onset is None:
        if not first_last_default:
            raise RowError("onset frame is missing")
        on_pos = 0
    else:
        on_pos = idx.pos(onset, "onset frame")
    if offset is None:
        off_pos = len(idx.files) - 1 if first_last_default else None
    else:
        off_pos = idx.pos(offset, "offset frame")
    if off_pos is not None and off_pos < on_pos:
        raise RowError(f"offset frame {idx.numbers[off_pos]} is before onset frame {idx.numbers[on_pos]}")
    estimated = False
    if apex is None:
        end = off_pos if off_pos is not None else len(idx.files) - 1
        ap_pos = estimate_apex(idx.files, on_pos, end, apex_rule)
        estimated = True
        extra["apex_rule"] = apex_rule
    else:
        ap_pos = idx.pos(apex, "apex frame")
        if ap_pos < on_pos:
            raise RowError(f"apex frame {apex} is before onset frame {idx.numbers[on_pos]}")
        if off_pos is not None and ap_pos > off_pos:
            raise RowError(f"apex frame {apex} is after offset frame {idx.numbers[off_pos]}")
    if ap_pos == on_pos:
        extra["onset_equals_apex"] = "true"
        extra["note"] = (extra.get("note", "") + "; " if extra.get("note") else "") + (
            "onset == apex in the annotation: onset->apex flow will be ~zero"
        )
    aus, aus_raw = clean_aus(aus_text)
    if aus_raw != aus:
        extra["aus_raw"] = aus_raw
    sides = sorted({t.side for t in parse_au_tokens(aus) if t.side})
    if sides:
        extra["au_sides"] = ",".join(sides)
    if any(t.uncertain for t in parse_au_tokens(aus)):
        extra["au_uncertain"] = ",".join(str(t.au) for t in parse_au_tokens(aus) if t.uncertain)
    n = idx.numbers
    return Sample(
        dataset=dataset,
        subject=subject,
        sample_id=sample_id,
        source=folder,
        onset=on_pos,
        apex=ap_pos,
        offset=off_pos,
        emotion=emotion,
        aus=aus,
        apex_estimated=estimated,
        frame_numbers=(n[on_pos], n[ap_pos], n[off_pos] if off_pos is not None else None),
        extra={k: str(v) for k, v in extra.items()},
    )


_OR = re.compile(r"\s+or\s+|\s*/\s*", re.IGNORECASE)


def clean_aus(text) -> tuple[str, str]:
    """Validate an AU cell. Returns ``(aus, raw)``: ``aus`` is what :func:`mepipe.aus.parse_aus`
    reads; ``raw`` the cell as written.

    Alternatives written ``R12 or R15`` (SAMM) or ``12/15`` become ``R12?+R15?``: both AUs kept,
    marked uncertain. Blank, ``/`` and ``-`` mean no AU. Raises RowError for other text.
    """
    raw = clean_cell(text)
    if raw.lower() in MISSING:
        return "", raw
    s = raw
    if _OR.search(s) and s.strip() != "/":
        parts = [p for p in re.split(r"[+,;&]", s)]
        out = []
        for part in parts:
            alts = [a.strip() for a in _OR.split(part) if a.strip()]
            if len(alts) > 1:
                try:
                    toks = [t for a in alts for t in parse_au_tokens(a)]
                except AUParseError as e:
                    raise RowError(f"AU cell {raw!r}: {e}") from None
                out.append("+".join(f"{t.side}{t.au}{t.intensity}?" for t in toks))
            elif alts:
                out.append(alts[0])
        s = "+".join(out)
    try:
        tokens = parse_au_tokens(s)
    except AUParseError as e:
        raise RowError(f"AU cell {raw!r}: {e}") from None
    return (format_aus(tokens) if s != raw else s), raw


# ---------------------------------------------------------------------------------------------
# apex rules


def estimate_apex(files: list[Path], onset: int, offset: int, rule: str) -> int:
    """Choose an apex position between ``onset`` and ``offset`` (positions, inclusive).

    ``middle``: ``onset + (offset - onset) // 2``. ``max-motion``: the frame whose grey image has the
    largest mean absolute difference from the onset frame -- a cheap proxy for "most motion",
    sensitive to head movement and lighting as well as to the expression.
    """
    if rule not in APEX_RULES:
        raise RowError(f"unknown apex rule {rule!r}; use one of {', '.join(APEX_RULES)}")
    if offset <= onset:
        return onset
    if rule == "middle":
        return onset + (offset - onset) // 2
    import numpy as np

    from ..frames import read_image

    def grey(p):
        import cv2

        try:
            return cv2.cvtColor(read_image(p), cv2.COLOR_BGR2GRAY).astype(np.float32)
        except FrameError as e:
            raise RowError(f"max-motion apex rule: {e}") from None

    ref = grey(files[onset])
    best, best_pos = -1.0, onset + (offset - onset) // 2
    for i in range(onset + 1, offset + 1):
        g = grey(files[i])
        if g.shape != ref.shape:
            raise RowError(f"frame size differs from the onset frame: {files[i]}")
        d = float(np.abs(g - ref).mean())
        if d > best:
            best, best_pos = d, i
    return best_pos


def check_apex_rule(rule: str) -> str:
    if rule not in APEX_RULES:
        raise AnnotationError(f"unknown apex rule {rule!r}; use one of {', '.join(APEX_RULES)}")
    return rule


def read_annotation(
    root: Path, annotation, patterns, columns, required, *, what: str, apex_rule: str, max_depth: int = 4
):
    """Check ``apex_rule``, then find the annotation file (:func:`find_annotation`) and read its
    table (:func:`read_table`). Returns ``(path, table)``."""
    check_apex_rule(apex_rule)
    path = find_annotation(root, patterns, annotation, max_depth=max_depth, what=what)
    return path, read_table(path, columns, required)


# ---------------------------------------------------------------------------------------------
# row loop


class RowCollector:
    """Collects samples and per-row failures for one annotation file; enforces unique keys."""

    def __init__(self, dataset: str, path: Path):
        self.dataset = dataset
        self.path = path
        self.samples: list[Sample] = []
        self.failures: list[Failure] = []
        self._seen: dict[str, int] = {}

    def where(self, rowno, subject, sample_id) -> str:
        return f"{self.path} row {rowno} (sample {self.dataset}/{subject or '?'}/{sample_id or '?'})"

    def fail(self, rowno, subject, sample_id, reason: str):
        key = f"{self.dataset}/{subject}/{sample_id}" if subject and sample_id else f"{self.dataset}/row{rowno}"
        self.failures.append(Failure(key, "annotation", f"{self.where(rowno, subject, sample_id)}: {reason}"))

    def add(self, rowno, sample: Sample):
        if sample.key in self._seen:
            raise RowError(f"duplicate sample {sample.key} (first at row {self._seen[sample.key]})")
        self._seen[sample.key] = rowno
        sample.extra.setdefault("annotation_row", str(rowno))
        self.samples.append(sample)

    def result(self):
        if not self.samples and not self.failures:
            raise AnnotationError(f"annotation file has no data rows: {self.path}")
        return self.samples, self.failures


@dataclass
class RowRef:
    """The subject and sample id naming an annotation row in a Failure."""

    subject: str
    sample_id: str


def collect_rows(dataset: str, path: Path, rows, build, label=None):
    """``(samples, failures)`` from the rows of annotation file ``path``: ``build(row, ref)`` gives
    the Sample of each ``(rowno, row)`` or raises RowError, which becomes a Failure named by ``ref``.

    ``ref`` starts as ``RowRef(*label(rowno, row))`` (by default the subject and filename cells);
    ``build`` may update it once it knows better, e.g. to the subject folder's name.
    """
    col = RowCollector(dataset, path)
    for rowno, row in rows:
        ref = RowRef(*label(rowno, row)) if label else RowRef(row["subject"], row["filename"])
        try:
            col.add(rowno, build(row, ref))
        except RowError as e:
            col.fail(rowno, ref.subject, ref.sample_id, str(e))
    return col.result()


def numbered_subject_label(template: str):
    """A ``label`` for :func:`collect_rows`: a subject cell holding a number is written with
    ``template`` (``"sub{:02d}"`` makes ``1`` ``sub01``), other subjects as they stand; the sample
    id is the filename cell."""

    def label(rowno, row):
        subject = row["subject"]
        return (template.format(int(subject)) if subject.isdigit() else subject), row["filename"]

    return label


def subject_clip_dir(base: Path, row, ref: RowRef, root: Path, *, prefixes, widths) -> Path:
    """The clip folder of an annotation row: the subject's folder under ``base`` (:func:`subject_dir`),
    then the folder named by the row's filename cell. ``ref.subject`` becomes the subject folder's name."""
    sdir = subject_dir(base, row["subject"], root, prefixes=prefixes, widths=widths)
    ref.subject = sdir.name
    return child_dir(sdir, row["filename"], root, what="clip")


def row_frames(row, *, offset_required: bool = True, negative_apex_is_missing: bool = False):
    """The ``(onset, apex, offset)`` frame numbers of an annotation row; a missing apex is ``None``."""
    onset = parse_frame_number(row["onset"], "onset frame")
    apex = parse_frame_number(
        row.get("apex", ""), "apex frame", required=False, negative_is_missing=negative_apex_is_missing
    )
    offset = parse_frame_number(row["offset"], "offset frame", required=offset_required)
    return onset, apex, offset


def sheet_extra(path: Path, row, **fields) -> dict:
    """A sample's ``extra`` from an annotation row: the annotation file name, ``fields``, then the
    sheet's unmapped columns."""
    return {"annotation": path.name, **fields, **row["_extra"]}


def sheet_sample(
    dataset: str, ref: RowRef, row, folder: Path, numbers, extra: dict, *, apex_rule: str, cache: dict, emotion=None
) -> Sample:
    """:func:`resolve_clip` for an annotation row: ``numbers`` are its ``(onset, apex, offset)``
    frame numbers; the emotion (unless given) and the AUs are the row's cells."""
    onset, apex, offset = numbers
    return resolve_clip(
        dataset=dataset, subject=ref.subject, sample_id=ref.sample_id, folder=folder, onset=onset, apex=apex,
        offset=offset, emotion=row["emotion"] if emotion is None else emotion, aus_text=row.get("aus", ""),
        apex_rule=apex_rule, extra=extra, index_cache=cache,
    )
