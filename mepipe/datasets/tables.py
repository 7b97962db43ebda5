"""Annotation sheets as tables: every cell of a sheet (xlsx via openpyxl, xls via xlrd, csv), the
header row found by its content (SAMM has a title block above it) and columns by header text,
never by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AnnotationError
from .cells import clean_cell, norm_header


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
    sheet: str = ""  # the workbook sheet read ("" for csv)

    def has(self, key: str) -> bool:
        return key in self.columns


def sheet_names(path: Path) -> list[str]:
    """The sheet names of a workbook (``[]`` for csv or an unreadable file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            try:
                return list(wb.sheetnames)
            finally:
                wb.close()
        if suffix == ".xls":
            import xlrd

            return list(xlrd.open_workbook(str(path), on_demand=True).sheet_names())
    except Exception:  # a damaged file is reported by read_sheet
        return []
    return []


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


def read_table(
    path, spec: dict[str, tuple[str, ...]], required: tuple[str, ...], sheet=0, scan_rows: int = 60
) -> Table:
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
        sheet=sheet if isinstance(sheet, str) else (sheet_names(path)[sheet : sheet + 1] or [""])[0],
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
