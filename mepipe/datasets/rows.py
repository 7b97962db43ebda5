"""The row loop the sheet adapters share: each row becomes a Sample or one Failure naming the file,
the row and the sample, and one bad row never stops the others.

* :class:`LoadResult`: an adapter's ``(samples, failures)``, which also says what was read (the
  file and sheet, how many rows, why each failure failed) for ``mepipe datasets check``;
* :class:`RowCollector` / :func:`collect_rows`: the loop, unique sample keys;
* :class:`SheetRows`: one adapter run's shared settings (dataset, file, apex rule, frame rate) and
  :meth:`SheetRows.sample`, a row's cells to a validated :class:`Sample`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AnnotationError, Failure
from ..sample import Sample, text_problem
from .apex import check_apex_rule
from .cells import RowError, parse_frame_number
from .clips import resolve_clip
from .files import child_dir, find_annotation, subject_dir
from .tables import read_table


class LoadResult(tuple):
    """``(samples, failures)`` as every adapter returns them, plus what ``datasets check`` reports:
    ``source`` (the annotation file, or the folder scanned), ``sheet`` (the workbook sheet read),
    ``rows`` (rows or clip folders read), ``skipped`` (rows that are not micro-expressions),
    ``failure_kinds`` (one kind per failure, see :data:`mepipe.datasets.cells.FAILURE_KINDS`) and
    ``choice`` (how the file was chosen when several were found)."""

    def __new__(cls, samples, failures, *, source, sheet="", rows=0, skipped=0, failure_kinds=(), choice=""):
        self = super().__new__(cls, (list(samples), list(failures)))
        self.source = Path(source)
        self.sheet = sheet
        self.rows = rows
        self.skipped = skipped
        self.failure_kinds = list(failure_kinds) or ["other"] * len(self[1])
        self.choice = choice
        return self

    def __getnewargs_ex__(self):  # pickle and copy: rebuild with the same attributes
        return (self[0], self[1]), {
            "source": self.source,
            "sheet": self.sheet,
            "rows": self.rows,
            "skipped": self.skipped,
            "failure_kinds": self.failure_kinds,
            "choice": self.choice,
        }

    @property
    def samples(self) -> list[Sample]:
        return self[0]

    @property
    def failures(self) -> list[Failure]:
        return self[1]


class RowCollector:
    """Collects samples and per-row failures for one annotation file; enforces unique keys."""

    def __init__(self, dataset: str, path: Path):
        self.dataset = dataset
        self.path = path
        self.samples: list[Sample] = []
        self.failures: list[Failure] = []
        self.kinds: list[str] = []
        self.rows = 0
        self._seen: dict[str, int] = {}

    def where(self, rowno, subject, sample_id) -> str:
        return f"{self.path} row {rowno} (sample {self.dataset}/{subject or '?'}/{sample_id or '?'})"

    def fail(self, rowno, subject, sample_id, reason: str, kind: str = "other", where: str | None = None):
        """Record a Failure named by file, row and sample (``where`` replaces "file row N (sample ...)")."""
        named = subject and sample_id and "/" not in f"{subject}{sample_id}"  # a '/' would not give one sample's key
        key = f"{self.dataset}/{subject}/{sample_id}" if named else f"{self.dataset}/row{rowno}"
        self.failures.append(Failure(key, "annotation", f"{where or self.where(rowno, subject, sample_id)}: {reason}"))
        self.kinds.append(kind)

    def add(self, rowno, sample: Sample):
        why = text_problem(sample)
        if why is not None:
            raise RowError(f"sample {sample.key!r}: {why}", "unsafe_name")
        if sample.key in self._seen:
            raise RowError(f"duplicate sample {sample.key} (first at row {self._seen[sample.key]})", "duplicate")
        self._seen[sample.key] = rowno
        sample.extra.setdefault("annotation_row", str(rowno))
        self.samples.append(sample)

    def result(self, *, source=None, sheet: str = "", skipped: int = 0, choice: str = "") -> LoadResult:
        if not self.samples and not self.failures:
            raise AnnotationError(f"annotation file has no data rows: {self.path}")
        return LoadResult(
            self.samples,
            self.failures,
            source=source or self.path,
            sheet=sheet,
            rows=self.rows,
            skipped=skipped,
            failure_kinds=self.kinds,
            choice=choice,
        )


@dataclass
class RowRef:
    """The subject and sample id naming an annotation row in a Failure."""

    subject: str
    sample_id: str


def run_rows(col: RowCollector, rows, build, label=None, *, count: bool = True) -> None:
    """Feed ``(rowno, row)`` pairs through ``build(row, ref)`` (a Sample, a list of them, or
    RowError) into ``col``. ``ref`` starts as ``RowRef(*label(rowno, row))`` (by default the subject
    and filename cells); ``build`` may update it once it knows better. ``count=False``: a second pass
    over rows already counted."""
    for rowno, row in rows:
        col.rows += count
        ref = RowRef(*label(rowno, row)) if label else RowRef(row["subject"], row["filename"])
        try:
            out = build(row, ref)
            for sample in out if isinstance(out, list) else [out]:
                col.add(rowno, sample)
        except RowError as e:
            col.fail(rowno, ref.subject, ref.sample_id, str(e), e.kind)


def collect_rows(
    dataset: str, path: Path, rows, build, label=None, *, sheet: str = "", skipped: int = 0, choice: str = ""
) -> LoadResult:
    """``(samples, failures)`` from the rows of annotation file ``path`` (see :func:`run_rows`)."""
    col = RowCollector(dataset, path)
    run_rows(col, rows, build, label)
    return col.result(sheet=sheet, skipped=skipped, choice=choice)


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


def apex_cell_text(row) -> str:
    """Why a row has no apex, from its apex cell (for the ``apex_estimated`` note)."""
    if "apex" not in row:
        return "the sheet has no apex column"
    cell = row["apex"]
    if not cell:
        return "the sheet's apex cell is blank"
    if cell.lstrip("-").isdigit() and int(cell) < 0:
        return f"the sheet's apex is {cell} (not coded)"
    return f"the sheet's apex cell is {cell!r}"


def read_annotation(
    root: Path, annotation, patterns, columns, required, *, what: str, apex_rule: str, max_depth: int = 4
):
    """Check ``apex_rule``, then find the annotation file (:func:`find_annotation`) and read its
    table (:func:`read_table`). Returns ``(path, table)``."""
    check_apex_rule(apex_rule)
    path = find_annotation(root, patterns, annotation, max_depth=max_depth, what=what)
    return path, read_table(path, columns, required)


@dataclass
class SheetRows:
    """What every row of one adapter run shares: the dataset name, the annotation file, the apex
    rule, the frame rate (for ``long_interval`` notes and apex checks), the first frame number the
    dataset's files use (None: not checked) and a cache of listed clip folders."""

    dataset: str
    path: Path
    apex_rule: str
    fps: float | None = None
    first_frame: int | None = None
    cache: dict = field(default_factory=dict)

    def extra(self, row, **fields) -> dict:
        """A sample's ``extra``: the annotation file name, ``fields``, then the sheet's unmapped columns."""
        return {"annotation": self.path.name, **fields, **row["_extra"]}

    def sample(
        self,
        ref: RowRef,
        row,
        folder: Path,
        numbers,
        extra: dict | None = None,
        *,
        emotion=None,
        notes=(),
        apex_missing: str | None = None,
    ) -> Sample:
        """:func:`resolve_clip` for an annotation row: ``numbers`` are its ``(onset, apex, offset)``
        frame numbers; the emotion (unless given), the AUs and the objective class are the row's cells."""
        onset, apex, offset = numbers
        return resolve_clip(
            dataset=self.dataset,
            subject=ref.subject,
            sample_id=ref.sample_id,
            folder=folder,
            onset=onset,
            apex=apex,
            offset=offset,
            emotion=row["emotion"] if emotion is None else emotion,
            aus_text=row.get("aus", ""),
            apex_rule=self.apex_rule,
            extra=self.extra(row) if extra is None else extra,
            fps=self.fps,
            first_frame=self.first_frame,
            apex_missing=apex_missing or apex_cell_text(row),
            objective=row.get("objective", ""),
            notes=notes,
            index_cache=self.cache,
        )
