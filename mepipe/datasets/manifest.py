"""The generic adapter: any dataset described by a plain CSV manifest.

Columns: ``subject,sample_id,path,onset,apex,offset,emotion,aus``. ``path`` is a folder of frames
or a video file, relative to the manifest; onset/apex/offset are 0-based positions in the sorted
frames; ``offset`` and ``aus`` may be empty. Every bad row is reported with its row number and the
problem; good rows are kept.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..aus import AUParseError, parse_au_tokens
from ..errors import AnnotationError, Failure
from ..sample import Sample

REQUIRED = ("subject", "sample_id", "path", "onset", "apex")
OPTIONAL = ("offset", "emotion", "aus")


def _parse_index(value: str, column: str, required: bool):
    v = (value or "").strip()
    if v == "":
        if required:
            raise ValueError(f"{column} is empty")
        return None
    try:
        f = float(v)
    except ValueError:
        raise ValueError(f"{column} is not a number: {v!r}") from None
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"{column} is not a number: {v!r}")
    if not f.is_integer():
        raise ValueError(f"{column} is not a whole frame index: {v!r}")
    if f < 0:
        raise ValueError(f"{column} is negative: {v!r}")
    return int(f)


def resolve_inside(root: Path, rel: str, allow_outside_root: bool) -> Path:
    """``root / rel``, refusing paths that leave ``root`` unless explicitly allowed."""
    p = (root / rel).resolve() if not Path(rel).is_absolute() else Path(rel).resolve()
    if not allow_outside_root:
        r = root.resolve()
        if p != r and r not in p.parents:
            raise ValueError(f"path {rel!r} is outside the dataset root {r} (use --allow-outside-root)")
    return p


def read_manifest(path, dataset: str | None = None, allow_outside_root: bool = False):
    """Parse a manifest. Returns ``(samples, failures)``; raises AnnotationError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"manifest not found: {path}")
    dataset = dataset or path.stem
    root = path.parent
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"manifest is not UTF-8 text: {path} ({e})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise AnnotationError(f"manifest {path} lacks column(s) {', '.join(missing)}; has: {', '.join(header) or 'none'}")
    samples: list[Sample] = []
    failures: list[Failure] = []
    seen: dict[str, int] = {}
    for rowno, raw in enumerate(reader, start=2):  # row 1 is the header
        row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if k is not None}
        subject = row.get("subject", "").strip()
        sid = row.get("sample_id", "").strip()
        ref = f"{dataset}/{subject or '?'}/{sid or '?'}"
        where = f"{path} row {rowno} (sample {ref})"
        try:
            if not subject:
                raise ValueError("subject is empty")
            if not sid:
                raise ValueError("sample_id is empty")
            key = f"{dataset}/{subject}/{sid}"
            if key in seen:
                raise ValueError(f"duplicate sample id (first at row {seen[key]})")
            rel = row.get("path", "").strip()
            if not rel:
                raise ValueError("path is empty")
            source = resolve_inside(root, rel, allow_outside_root)
            onset = _parse_index(row.get("onset", ""), "onset", True)
            apex = _parse_index(row.get("apex", ""), "apex", True)
            offset = _parse_index(row.get("offset", ""), "offset", False)
            if onset > apex:
                raise ValueError(f"onset {onset} is after apex {apex}")
            if offset is not None and apex > offset:
                raise ValueError(f"apex {apex} is after offset {offset}")
            aus = row.get("aus", "").strip()
            parse_au_tokens(aus)  # validate now, parse again when caching
        except (ValueError, AUParseError) as e:
            failures.append(Failure(ref if subject and sid else f"{dataset}/row{rowno}", "annotation", f"{where}: {e}"))
            continue
        seen[key] = rowno
        samples.append(
            Sample(
                dataset=dataset,
                subject=subject,
                sample_id=sid,
                source=source,
                onset=onset,
                apex=apex,
                offset=offset,
                emotion=row.get("emotion", "").strip(),
                aus=aus,
                frame_numbers=(onset, apex, offset),
                extra={"manifest_row": str(rowno)},
            )
        )
    if not samples and not failures:
        raise AnnotationError(f"manifest has no rows: {path}")
    return samples, failures
