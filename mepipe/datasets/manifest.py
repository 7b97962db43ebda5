"""The generic adapter: any dataset described by a plain CSV manifest.

Columns: ``subject,sample_id,path,onset,apex,offset,emotion,aus``. ``path`` is a folder of frames
or a video file, relative to the manifest; onset/apex/offset are 0-based positions in the sorted
frames; ``offset`` and ``aus`` may be empty. Every bad row is reported with its row number and the
problem; good rows are kept. An AU cell never fails a row: text that is not an AU is kept and
noted (``au_raw``), as in the sheet adapters.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import AnnotationError
from ..sample import Sample
from .cells import parse_frame_number
from .clips import add_clip_notes
from .rows import LoadResult, RowCollector

REQUIRED = ("subject", "sample_id", "path", "onset", "apex")
OPTIONAL = ("offset", "emotion", "aus")


def _inside(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def resolve_inside(root: Path, rel: str, allow_outside_root: bool) -> Path:
    """``root / rel`` with symlinks resolved, refusing paths that leave ``root`` unless explicitly
    allowed, symlink loops, and anything that is neither a folder nor a regular file (a FIFO, a
    socket, a device: opening one could block the run)."""
    import stat

    try:
        p = (root / rel).resolve() if not Path(rel).is_absolute() else Path(rel).resolve()
    except (RuntimeError, OSError) as e:  # Python < 3.13 raises RuntimeError on a symlink loop
        raise ValueError(f"path {rel!r} cannot be resolved ({e}): a symlink loop?") from None
    r = root.resolve()
    if not allow_outside_root and not _inside(p, r):
        raise ValueError(f"path {rel!r} is outside the dataset root {r} (use --allow-outside-root)")
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"path {rel!r} not found: {p}") from None
    except OSError as e:
        raise ValueError(f"path {rel!r} cannot be read: {p} ({e.strerror or e})") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
        raise ValueError(f"path {rel!r} is {kind}, not a folder of frames or a video file: {p}")
    if stat.S_ISDIR(mode) and not allow_outside_root:
        from ..frames import FrameError, list_frame_files

        try:
            files = list_frame_files(p)
        except FrameError:
            return p  # reported when the frames are read
        for f in files:
            try:
                real = f.resolve()
            except (RuntimeError, OSError) as e:
                raise ValueError(f"frame file {f} cannot be resolved ({e}): a symlink loop?") from None
            if not _inside(real, r):
                raise ValueError(
                    f"frame file {f} leads outside the dataset root {r} (to {real}); "
                    f"use --allow-outside-root to read it"
                )
    return p


def read_manifest(path, dataset: str | None = None, allow_outside_root: bool = False):
    """Parse a manifest. Returns ``(samples, failures)``; raises AnnotationError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"manifest not found: {path}")
    dataset = dataset or path.stem
    if "/" in dataset or "\x00" in dataset or not dataset.strip():
        raise AnnotationError(f"dataset name {dataset!r} (of manifest {path}) must be non-empty and hold no '/'")
    root = path.parent
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"manifest is not UTF-8 text: {path} ({e})") from None
    nul = "\U0010fffe"  # NUL bytes pass the csv module (which refuses them before Python 3.11) as this
    reader = csv.DictReader(text.replace("\x00", nul).splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise AnnotationError(
            f"manifest {path} lacks column(s) {', '.join(missing)}; has: {', '.join(header) or 'none'}"
        )
    samples: list[Sample] = []
    aus_known = "aus" in header  # without the column the AUs are unknown, not "none active"
    col = RowCollector(dataset, path)
    seen: dict[str, int] = {}
    for rowno, raw in enumerate(reader, start=2):  # row 1 is the header
        row = {(k or "").strip().lower(): (v or "").replace(nul, "\x00") for k, v in raw.items() if k is not None}
        subject = row.get("subject", "").strip()
        sid = row.get("sample_id", "").strip()
        try:
            if not subject:
                raise ValueError("subject is empty")
            if not sid:
                raise ValueError("sample_id is empty")
            for name, v in (("subject", subject), ("sample_id", sid)):
                if "/" in v:
                    raise ValueError(
                        f"{name} {v!r} holds a '/', which sample keys (dataset/subject/sample_id) "
                        f"reserve: two rows could give one key"
                    )
            if any("\x00" in v for v in row.values()):
                bad = [k for k, v in row.items() if "\x00" in v]
                raise ValueError(f"cell(s) {', '.join(bad)} hold a NUL byte, which the cache cannot store")
            key = f"{dataset}/{subject}/{sid}"
            if key in seen:
                raise ValueError(f"duplicate sample id (first at row {seen[key]})")
            rel = row.get("path", "").strip()
            if not rel:
                raise ValueError("path is empty")
            source = resolve_inside(root, rel, allow_outside_root)
            onset = parse_frame_number(row.get("onset", ""), "onset", required=True, index=True)
            apex = parse_frame_number(row.get("apex", ""), "apex", required=True, index=True)
            offset = parse_frame_number(row.get("offset", ""), "offset", required=False, index=True)
            if onset > apex:
                raise ValueError(f"onset {onset} is after apex {apex}")
            if offset is not None and apex > offset:
                raise ValueError(f"apex {apex} is after offset {offset}")
            aus = row.get("aus", "").strip()
        except ValueError as e:
            col.fail(rowno, subject, sid, str(e), getattr(e, "kind", "other"))
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
                aus_known=aus_known,
            )
        )
        add_clip_notes(samples[-1], fps=None)
    if not samples and not col.failures:
        raise AnnotationError(f"manifest has no rows: {path}")
    return LoadResult(
        samples, col.failures, source=path, rows=len(samples) + len(col.failures), failure_kinds=col.kinds
    )
