"""Releases laid out as the providers ship them, around the real published annotation sheets in
``../shared/data/annotations`` (never copied into the project: each test copies a sheet into a
temporary folder and builds the frame tree there).

The sheets are also read here, with openpyxl alone (header row given, cells by header text), so a
test compares what an adapter loaded against an independent reading of the same file. Frames are
one tiny image written under every number a row needs: its onset, apex and offset (the whole
onset..offset run where the apex must be estimated, so the rule's choice can be checked), and
each long clip's first and last frame.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

CASME2 = "CASME2-coding-20140508.xlsx"
SAMM = "SAMM_Micro_FACS_Codes_v2.xlsx"
SMIC_E = "SMIC-HS-E_annotation.xlsx"
CASME3 = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
MEGC = "combined_3class_gt.csv"
#: The 2019-07-01 CASME II sheet relabels these sub24 clips from sadness to surprise.
CASME2_2019_RELABELS = ("EP07_01", "EP07_04f", "EP10_03")

_BYTES: dict[str, bytes] = {}


def tiny(ext: str) -> bytes:
    """An 8x8 grey image encoded as ``ext`` (``.jpg``, ``.bmp``)."""
    if ext not in _BYTES:
        import cv2

        ok, buf = cv2.imencode(ext, np.full((8, 8), 128, np.uint8))
        assert ok
        _BYTES[ext] = buf.tobytes()
    return _BYTES[ext]


def write_frames(folder: Path, numbers, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = tiny(Path(fmt).suffix)
    for n in numbers:
        (folder / fmt.format(n)).write_bytes(data)


def as_int(v) -> int | None:
    """A frame cell as a number (cells may be numbers or digit text), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and float(v).is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


def needed(onset, apex, offset) -> set[int]:
    """The frame numbers a row needs: onset, apex, offset; the whole run where the apex is missing
    or outside a proper onset..offset."""
    nums = {n for n in (onset, apex, offset) if n is not None}
    if onset is not None and offset is not None and onset <= offset and (apex is None or not onset <= apex <= offset):
        nums |= set(range(onset, offset + 1))
    return nums


def sheet_rows(path: Path, sheet: str, header_row: int) -> list[dict]:
    """Every non-blank row below ``header_row`` as ``{header text: cell value, "_row": n}``."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()
    header = [str(h).strip() if h is not None else None for h in rows[header_row - 1]]
    out = []
    for n, r in enumerate(rows[header_row:], start=header_row + 1):
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in r):
            continue
        d = {h: c for h, c in zip(header, r) if h}
        d["_row"] = n
        out.append(d)
    return out


def megc_lines(annotations: Path, dataset: str) -> list[list[str]]:
    with open(annotations / MEGC, newline="", encoding="utf-8") as fh:
        return [line for line in csv.reader(fh) if line and line[0] == dataset]


# ---------------------------------------------------------------------------------------------


def casme2(root: Path, annotations: Path) -> list[dict]:
    """``CASME2_RAW_selected/subNN/<Filename>/img<n>.jpg`` and the 2014 sheet at the root."""
    shutil.copy(annotations / CASME2, root / CASME2)
    rows = sheet_rows(annotations / CASME2, "Sheet1", 1)
    for r in rows:
        nums = needed(as_int(r["OnsetFrame"]), as_int(r["ApexFrame"]), as_int(r["OffsetFrame"]))
        write_frames(root / "CASME2_RAW_selected" / f"sub{int(r['Subject']):02d}" / r["Filename"], nums, "img{}.jpg")
    return rows


def casme2_2019(root: Path, annotations: Path) -> dict[int, str]:
    """A 2019-07-01 sheet in its published form, made from the 2014 one: an ``Objective Classes``
    column, and the three sub24 clips relabelled from sadness to surprise. Returns the objective
    class written on each sheet row."""
    from openpyxl import load_workbook

    wb = load_workbook(annotations / CASME2)
    ws = wb["Sheet1"]
    head = {str(c.value).strip(): c.column for c in ws[1] if c.value is not None}
    col = ws.max_column + 1
    ws.cell(1, col, "Objective Classes")
    objective = {}
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, head["Subject"]).value is None:
            continue
        objective[r] = ["I", "II", "III", "IV", "V", "VI", "VII"][r % 7]
        ws.cell(r, col, objective[r])
        if ws.cell(r, head["Subject"]).value == "24" and ws.cell(r, head["Filename"]).value in CASME2_2019_RELABELS:
            assert ws.cell(r, head["Estimated Emotion"]).value == "sadness"
            ws.cell(r, head["Estimated Emotion"], "surprise")
    wb.save(root / "CASME2-coding-20190701.xlsx")
    return objective


def samm(root: Path, annotations: Path) -> list[dict]:
    """``SAMM/<subject>/<Filename>/<subject>_<nnnnn>.jpg`` and the sheet as published."""
    base = root / "SAMM"
    base.mkdir(parents=True)
    shutil.copy(annotations / SAMM, base / SAMM)
    rows = sheet_rows(annotations / SAMM, "MICRO_ONLY", 14)
    for r in rows:
        nums = needed(as_int(r["Onset Frame"]), as_int(r["Apex Frame"]), as_int(r["Offset Frame"]))
        write_frames(base / r["Subject"] / r["Filename"], nums, r["Subject"] + "_{:05d}.jpg")
    return rows


def smic_original(root: Path, annotations: Path) -> list[dict]:
    """The original SMIC release ``SMIC_all_raw/HS/s<n>/micro/<class>/<clip>/image<nnnnnn>.bmp``,
    one clip per SMIC line of the MEGC 2019 list (the release has no sheet). Returns, per clip,
    its subject and clip folder names, class and frame numbers."""
    classes = ("negative", "positive", "surprise")
    out = []
    for i, (_, subject, sample, label) in enumerate(megc_lines(annotations, "smic")):
        n = int(subject[1:])
        clip = f"s{n}_" + sample.split("_", 1)[1]  # the release writes s1_ne_01 where the list has s01_ne_01
        numbers = list(range(1000 * i + 1, 1000 * i + 4 + i % 5))
        write_frames(
            root / "SMIC_all_raw" / "HS" / f"s{n}" / "micro" / classes[int(label)] / clip, numbers, "image{:06d}.bmp"
        )
        out.append(
            {
                "subject": f"s{n}",
                "clip": clip,
                "emotion": classes[int(label)],
                "numbers": numbers,
                "listed": (subject, sample),
            }
        )
    return out


def smic_e(root: Path, annotations: Path) -> dict[str, list[dict]]:
    """SMIC-E: ``HS_long/SMIC-HS-E/sNN/<clip>/image<nnnnnn>.jpg`` and ``VIS_long/SMIC-VIS-E/...``,
    the workbook (sheets HS and VIS) at ``HS_long/SMIC-HS-E_annotation.xlsx``. A long clip runs from
    FirstF to LastF (VIS: FirstF + TotalVL - 1); a row whose FirstF is not a number has no clip."""
    (root / "HS_long").mkdir(parents=True)
    shutil.copy(annotations / SMIC_E, root / "HS_long" / SMIC_E)
    out = {}
    for subset in ("HS", "VIS"):
        rows = sheet_rows(annotations / SMIC_E, subset, 1)
        for r in rows:
            first = as_int(r["FirstF"])
            if first is None:
                continue
            last = as_int(r.get("LastF")) if "LastF" in r else first + as_int(r["TotalVL"]) - 1
            nums = {first, last}
            for a, b in (("OnsetF", "OffsetF"), ("Onset2F", "Offset2F")):
                if as_int(r[a]) is not None:
                    nums |= {n for n in range(as_int(r[a]), as_int(r[b]) + 1) if first <= n <= last}
            write_frames(
                root / f"{subset}_long" / f"SMIC-{subset}-E" / f"s{r['Subject']:02d}" / r["Filename"],
                nums,
                "image{:06d}.jpg",
            )
        out[subset] = rows
    return out


def casme3(root: Path, annotations: Path, layout: str) -> list[dict]:
    """CAS(ME)^3 part A, ``layout="video"``: ``data/part_A/spNO.<n>/<video>/color/<n>.jpg`` (the
    frames every row of the video needs, and frame 1); ``layout="clip"``:
    ``Part_A_ME_clip/frame/<Subject>_<Filename>_<Onset>/<n>.jpg`` (each row's own frames). The sheet
    lies in ``annotation/``."""
    (root / "annotation").mkdir(parents=True)
    shutil.copy(annotations / CASME3, root / "annotation" / CASME3)
    rows = sheet_rows(annotations / CASME3, "label", 1)
    for r in rows:
        nums = {n for n in needed(*(as_int(r[k]) for k in ("Onset", "Apex", "Offset"))) if n >= 1}
        if layout == "video":
            write_frames(root / "data" / "part_A" / r["Subject"] / r["Filename"] / "color", nums | {1}, "{}.jpg")
        else:
            folder = f"{r['Subject']}_{r['Filename']}_{r['Onset']}"
            write_frames(root / "Part_A_ME_clip" / "frame" / folder, nums or {1}, "{}.jpg")
    return rows
