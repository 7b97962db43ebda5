"""Tiny copies of each dataset as its provider ships it, generated from real face photos.

Each ``make_<dataset>(root)`` writes the release's folder layout, frame naming and annotation file
(xlsx through openpyxl, with the quirks of the real files) under ``root`` and returns a spec:
``{"root": Path, "annotation": Path, "rows": [...]}`` where each row dict holds what was written
(``subject``, ``filename``, frame numbers ``onset``/``apex``/``offset`` as in the sheet, ``emotion``,
``aus``) plus ``ok`` (whether the adapter should accept it), ``reason`` (a fragment of the
expected failure message) and ``key`` (the expected sample key). Frames are small (160 px) crops of
real faces, with a small horizontal shift that grows towards a chosen "peak" frame, so a
motion-based apex rule has a right answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FACE_DIR = Path("/work/shared/data/faces")
FACE_SIZE = 160


def _faces() -> list[np.ndarray]:
    import cv2

    paths = sorted(p for p in FACE_DIR.glob("*-ph.jpg")) if FACE_DIR.is_dir() else []
    if not paths:
        from mepipe.resources import packaged_faces

        paths = list(packaged_faces())
    out = []
    for p in paths:
        img = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        out.append(cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA))
    if not out:
        raise RuntimeError(f"no face images in {FACE_DIR} nor packaged with scikit-image/matplotlib")
    return out


_FACE_CACHE: list = []


def face(i: int) -> np.ndarray:
    if not _FACE_CACHE:
        _FACE_CACHE.extend(_faces())
    return _FACE_CACHE[i % len(_FACE_CACHE)]


def write_clip(
    folder: Path, numbers, fmt: str, face_index: int = 0, peak: int | None = None, grey: bool = False
) -> list[Path]:
    """Write one frame per number as ``fmt.format(n)`` in ``folder``; returns the paths.

    Frame k is the face shifted right by ``4 * (1 - |k - peak| / len)`` pixels (largest at the
    ``peak`` position, which defaults to the middle), so it differs most from frame 0 there.
    """
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    numbers = list(numbers)
    peak = len(numbers) // 2 if peak is None else peak
    base = face(face_index)
    out = []
    for k, n in enumerate(numbers):
        shift = 0.0 if k == 0 else 6.0 * (1.0 - abs(k - peak) / len(numbers))
        m = np.float32([[1, 0, shift], [0, 1, 0]])
        img = cv2.warpAffine(base, m, (FACE_SIZE, FACE_SIZE), borderMode=cv2.BORDER_REPLICATE)
        if grey:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        p = folder / fmt.format(n)
        ok, buf = cv2.imencode(p.suffix, img)
        assert ok, p
        buf.tofile(str(p))
        out.append(p)
    return out


def _xlsx(path: Path, rows, merge=()):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    for r in rows:
        ws.append(list(r))
    for rng in merge:
        ws.merge_cells(rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def _row(subject, filename, onset, apex, offset, emotion, aus="", ok=True, reason="", key=None, **kw):
    d = dict(
        subject=subject,
        filename=filename,
        onset=onset,
        apex=apex,
        offset=offset,
        emotion=emotion,
        aus=aus,
        ok=ok,
        reason=reason,
        key=key,
    )
    d.update(kw)
    return d


# ---------------------------------------------------------------------------------------------


def make_casme2(root, layout: str = "raw") -> dict:
    """CASME II: ``CASME2-coding-20190701.xlsx`` + ``CASME2_RAW_selected/subNN/EPxx/imgN.jpg``
    (``layout="cropped"``: ``Cropped/subNN/EPxx/reg_imgN.jpg``).

    Quirks: blank spacer columns, a header broken over two lines (``Estimated\\nEmotion``), subjects
    written as numbers and as text (``1``, ``"01"``), a float frame number (``20.0``), a ``/`` apex,
    frame numbers crossing 9 -> 10 (numeric sort), and bad rows of each kind.
    """
    root = Path(root)
    top, fmt = ("CASME2_RAW_selected", "img{}.jpg") if layout == "raw" else ("Cropped", "reg_img{}.jpg")
    clips = {
        ("sub01", "EP02_01f"): range(46, 53),
        ("sub01", "EP03_02"): range(100, 106),
        ("sub02", "EP01_11f"): range(20, 26),
        ("sub02", "EP06_01f"): range(7, 13),
        ("sub17", "EP05_09"): range(300, 305),
        ("sub02", "EP01_12"): range(1, 6),
        ("sub17", "EP05_10"): range(1, 6),
        ("sub02", "EP01_13"): range(1, 6),
        ("sub17", "EP05_11"): range(1, 6),
        ("sub04", "EP12_01f"): range(30, 36),
        ("sub04", "EP13_02"): range(10, 16),
    }
    for i, ((s, f), nums) in enumerate(clips.items()):
        write_clip(root / top / s / f, nums, fmt, face_index=i)
    rows = [
        _row(1, "EP02_01f", 46, 49, 52, "happiness", "12", key="casme2/sub01/EP02_01f"),
        _row(
            "01",
            "EP03_02",
            100,
            "/",
            105,
            "disgust",
            "4+7",
            key="casme2/sub01/EP03_02",
            apex_estimated=102,
            notes=("apex_estimated",),
        ),
        _row(2, "EP01_11f", 20.0, 22, 25, "repression", "R14", key="casme2/sub02/EP01_11f"),
        _row(2, "EP06_01f", 7, 10, 12, "fear", "1+2+AU4", key="casme2/sub02/EP06_01f"),
        _row(17, "EP05_09", 300, 302, 304, "others", "L10?", key="casme2/sub17/EP05_09"),
        _row(4, "EP12_01f", 30, 33, 35, "surprise", "1+2", key="casme2/sub04/EP12_01f"),
        _row(4, "EP13_02", 10, 12, 15, "sadness", "15+17", key="casme2/sub04/EP13_02"),
        _row(
            2,
            "EP01_12",
            1,
            3,
            60,
            "happiness",
            "12",
            ok=False,
            reason="offset frame 60 has no frame file",
            key="casme2/sub02/EP01_12",
            failure="frame_not_found",
        ),
        # apex before onset in a 5 ms interval: the apex is the typo, chosen by the rule (middle of 4..5)
        _row(
            17,
            "EP05_10",
            4,
            2,
            5,
            "disgust",
            "4",
            key="casme2/sub17/EP05_10",
            apex_estimated=4,
            notes=("apex_estimated", "onset_equals_apex"),
        ),
        _row(
            17,
            "EP05_11",
            5,
            3,
            2,
            "disgust",
            "4",
            ok=False,
            reason="onset frame 5 is after offset frame 2",
            key="casme2/sub17/EP05_11",
            failure="onset_after_offset",
        ),
        _row(
            1, "EP09_01", 1, 2, 3, "surprise", "1", ok=False, reason="clip folder not found", key="casme2/sub01/EP09_01"
        ),
        # an AU cell never fails a row: the text is kept, the vector holds AU4
        _row(2, "EP01_13", 1, 3, 5, "others", "4+blink", key="casme2/sub02/EP01_13", notes=("au_raw",)),
        _row(
            1,
            "EP02_01f",
            46,
            48,
            52,
            "happiness",
            "12",
            ok=False,
            reason="duplicate sample",
            key="casme2/sub01/EP02_01f",
        ),
    ]
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated\nEmotion",
    ]
    body = [
        [r["subject"], r["filename"], None, r["onset"], r["apex"], r["offset"], None, r["aus"], r["emotion"]]
        for r in rows
    ]
    ann = root / "CASME2-coding-20190701.xlsx"
    _xlsx(ann, [header, *body])
    for i, r in enumerate(rows):
        r["sheet_row"] = i + 2
        r["frames"] = root / top / (r["key"].split("/")[1]) / r["filename"]
    return {"root": root, "annotation": ann, "rows": rows, "frames_top": root / top}


def make_samm(root) -> dict:
    """SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` with a 13-row title block (merged cells) above the
    header, and ``SAMM/006/006_1_2/006_05562.jpg`` frames (5 digits) and ``007_0998.jpg`` (4 digits,
    crossing 999 -> 1000). Quirks: subjects as ``"006"`` text and ``7`` numbers, apex ``-1``,
    ``R12 or R15`` AU alternatives, a Duration that disagrees with onset/offset, bad rows.
    """
    root = Path(root)
    base = root / "SAMM"
    clips = {
        ("006", "006_1_2"): (range(5562, 5569), "006_{:05d}.jpg"),
        ("006", "006_1_6"): (range(1020, 1027), "006_{:04d}.jpg"),
        ("007", "007_3_1"): (range(998, 1004), "007_{:04d}.jpg"),
        ("011", "011_2_3"): (range(4410, 4416), "011_{:04d}.jpg"),
        ("011", "011_2_4"): (range(12001, 12007), "011_{:05d}.jpg"),
        ("011", "011_2_6"): (range(300, 306), "011_{:04d}.jpg"),
        ("007", "007_3_2"): (range(50, 56), "007_{:04d}.jpg"),
        ("011", "011_2_5"): (range(10, 16), "011_{:04d}.jpg"),
    }
    for i, ((s, f), (nums, fmt)) in enumerate(clips.items()):
        write_clip(base / s / f, nums, fmt, face_index=i, grey=True)
    rows = [
        _row("006", "006_1_2", 5562, 5565, 5568, "Anger", "4+7", key="samm/006/006_1_2", code="1", dur=7),
        _row(
            6,
            "006_1_6",
            1020,
            -1,
            1026,
            "Happiness",
            "R12 or R15",
            key="samm/006/006_1_6",
            code="1",
            dur=7,
            apex_estimated=1023,
            notes=("apex_estimated",),
        ),
        _row(7, "007_3_1", 998, 1001, 1003, "Contempt", "L14A+AU1", key="samm/007/007_3_1", code="3", dur=6),
        _row(
            11,
            "011_2_3",
            4410,
            4412,
            4415,
            "Other",
            "12?",
            key="samm/011/011_2_3",
            code="2",
            dur=9,
            notes=("contradiction",),
        ),
        _row(11, "011_2_4", 12001, 12003, 12006, "Surprise", "1+2", key="samm/011/011_2_4", code="2", dur=6),
        _row(11, "011_2_6", 300, 302, 305, "Fear", "20", key="samm/011/011_2_6", code="2", dur=6),
        _row(
            7,
            "007_3_2",
            50,
            52,
            2000,
            "Disgust",
            "9",
            ok=False,
            reason="offset frame 2000 has no frame file",
            key="samm/007/007_3_2",
            code="3",
            dur=6,
        ),
        _row(
            11,
            "011_2_5",
            10,
            "abc",
            15,
            "Sadness",
            "15",
            ok=False,
            reason="apex frame is not a frame number",
            key="samm/011/011_2_5",
            code="2",
            dur=6,
        ),
        _row(
            20,
            "020_1_1",
            1,
            2,
            3,
            "Anger",
            "4",
            ok=False,
            reason="subject folder",
            key="samm/020/020_1_1",
            code="1",
            dur=3,
        ),
    ]
    title = [
        ["SAMM Micro-Movement Database", None, None, None, None, None],
        ["Micro-Movement FACS Codes (version 2)", None, None, None, None, None],
        [None],
        ["Key:"],
        ["Inducement Code", "the stimulus video that induced the movement"],
        ["Onset/Apex/Offset Frame", "frame numbers of the image files; -1 = apex not coded"],
        ["Duration", "number of frames"],
        ["Micro", "Micro = shorter than 500 ms"],
        [None],
        ["Objective Classes", "1-7, see the paper"],
        [None],
        ["Copyright Manchester Metropolitan University"],
        [None],
    ]
    header = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Micro",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r["subject"],
                r["filename"],
                r["code"],
                r["onset"],
                r["apex"],
                r["offset"],
                r["dur"],
                "Micro",
                r["aus"],
                r["emotion"],
                1,
                "checked" if r["filename"] == "006_1_2" else None,
            ]
        )
    ann = base / "SAMM_Micro_FACS_Codes_v2.xlsx"
    _xlsx(ann, [*title, header, *body], merge=("A1:F1", "A2:F2"))
    for i, r in enumerate(rows):
        r["sheet_row"] = len(title) + 2 + i
        r["frames"] = base / r["key"].split("/")[1] / r["filename"]
    return {"root": root, "annotation": ann, "rows": rows, "header_row": len(title) + 1}


def make_smic(root) -> dict:
    """SMIC (original release): ``SMIC_all_raw/HS/sN/micro/<class>/sN_xx_NN/reg_image<n>.bmp`` (and
    ``image<n>.bmp``), a ``non_micro`` folder that must be ignored, and a one-frame clip (a failure).
    Row ``peak`` is the motion peak position, which ``max-motion`` must find.
    """
    root = Path(root)
    base = root / "SMIC_all_raw" / "HS"
    rows = [
        _row("s1", "s1_ne_01", 1001, None, 1006, "negative", key="smic/s1/s1_ne_01", fmt="reg_image{}.bmp", peak=2),
        _row("s1", "s1_po_01", 2040, None, 2047, "positive", key="smic/s1/s1_po_01", fmt="reg_image{}.bmp", peak=6),
        _row("s2", "s2_sur_01", 9, None, 14, "surprise", key="smic/s2/s2_sur_01", fmt="image{}.bmp", peak=4),
        _row("s2", "s2_ne_03", 500, None, 505, "negative", key="smic/s2/s2_ne_03", fmt="reg_image{}.bmp", peak=5),
        _row("s3", "s3_ne_02", 70, None, 75, "negative", key="smic/s3/s3_ne_02", fmt="reg_image{}.bmp", peak=1),
        _row("s3", "s3_sur_04", 40, None, 45, "surprise", key="smic/s3/s3_sur_04", fmt="reg_image{}.bmp", peak=3),
        _row(
            "s2",
            "s2_po_02",
            300,
            None,
            300,
            "positive",
            ok=False,
            reason="only 1 frame",
            key="smic/s2/s2_po_02",
            fmt="reg_image{}.bmp",
            peak=0,
        ),
    ]
    for i, r in enumerate(rows):
        folder = base / r["subject"] / "micro" / r["emotion"] / r["filename"]
        write_clip(folder, range(r["onset"], r["offset"] + 1), r["fmt"], face_index=i, peak=r["peak"])
        r["frames"] = folder
    write_clip(base / "s1" / "non_micro" / "s1_ne_99", range(1, 4), "reg_image{}.bmp")
    return {"root": root, "rows": rows, "base": base}


def make_smic_e(root) -> dict:
    """SMIC-E: ``HS_long/SMIC-HS-E/SMIC-HS-E_annotation.xlsx`` and long clips
    ``s01/s1_ne_01/image<6 digits>.jpg``; onset/offset are file numbers inside the long clip.
    The Emotion cell is blank on one row (taken from the ``_po_`` code of the filename).
    """
    root = Path(root)
    base = root / "HS_long" / "SMIC-HS-E"
    rows = [
        _row(1, "s1_ne_01", 102, None, 107, "negative", key="smic/s1/s1_ne_01", first=100, last=110),
        _row(1, "s1_po_02", 203, None, 206, "", key="smic/s1/s1_po_02", first=200, last=208, expect_emotion="positive"),
        _row(3, "s3_sur_01", 51, None, 58, "surprise", key="smic/s3/s3_sur_01", first=50, last=60),
        _row(
            3,
            "s3_ne_05",
            71,
            None,
            200,
            "negative",
            ok=False,
            reason="offset frame 200 has no frame file",
            key="smic/s3/s3_ne_05",
            first=70,
            last=75,
        ),
    ]
    for i, r in enumerate(rows):
        folder = base / f"s{r['subject']:02d}" / r["filename"]
        write_clip(folder, range(r["first"], r["last"] + 1), "image{:06d}.jpg", face_index=i)
        r["frames"] = folder
    header = ["Subject", "Filename", "Emotion", "OnsetF", "OffsetF", "OnsetF2", "OffsetF2", "FirstF", "LastF"]
    body = [
        [r["subject"], r["filename"], r["emotion"] or None, r["onset"], r["offset"], None, None, r["first"], r["last"]]
        for r in rows
    ]
    ann = base.parent / "SMIC-HS-E_annotation.xlsx"
    _xlsx(ann, [header, *body])
    for i, r in enumerate(rows):
        r["sheet_row"] = i + 2
    return {"root": root, "annotation": ann, "rows": rows}


def make_casme3(root) -> dict:
    """CAS(ME)^3 part A: ``part_A/annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` and
    ``part_A/data/part_A/spNO.1/a/color/<n>.jpg``. Quirks: several expressions in one video (ids
    ``spNO.1_a_3``, ``spNO.1_a_15``...), onset == apex, ``Others`` beside ``others``, an apex typo,
    a long interval, an expression-type column with a macro row (skipped), broken rows of each kind.
    """
    root = Path(root)
    data = root / "part_A" / "data" / "part_A"
    for i, (s, f, n) in enumerate([("spNO.1", "a", 40), ("spNO.1", "b", 12), ("spNO.2", "a", 10)]):
        write_clip(data / s / f / "color", range(1, n + 1), "{}.jpg", face_index=i)
        write_clip(data / s / f / "depth", range(1, 3), "{}.png", face_index=i, grey=True)
    rows = [
        _row("spNO.1", "a", 3, 6, 9, "happy", "L12", key="casme3/spNO.1/spNO.1_a_3", kind="micro-expression"),
        _row("spNO.1", "a", 15, 18, 22, "disgust", "4+7", key="casme3/spNO.1/spNO.1_a_15", kind="micro-expression"),
        _row(
            "spNO.1",
            "b",
            2,
            2,
            8,
            "surprise",
            "1+2",
            key="casme3/spNO.1/spNO.1_b_2",
            kind="micro-expression",
            notes=("onset_equals_apex",),
        ),
        _row(
            "spNO.2",
            "a",
            1,
            4,
            8,
            "Others",
            "AU4+AU7",
            key="casme3/spNO.2/spNO.2_a_1",
            kind="micro-expression",
            expect_emotion="others",
        ),
        _row("spNO.2", "a", 2, 5, 9, "happy", "12", ok=None, key=None, kind="macro-expression"),
        # apex before onset in a 0.1 s interval: the apex is the typo, estimated (middle of 5..8)
        _row(
            "spNO.2",
            "a",
            5,
            3,
            8,
            "sad",
            "15",
            key="casme3/spNO.2/spNO.2_a_5",
            kind="micro-expression",
            apex_estimated=6,
            notes=("apex_estimated",),
        ),
        # 1..38 lasts 1.23 s at 30 fps: kept, noted
        _row(
            "spNO.1",
            "a",
            1,
            20,
            38,
            "fear",
            "4",
            key="casme3/spNO.1/spNO.1_a_1",
            kind="micro-expression",
            notes=("long_interval",),
        ),
        # apex outside a 1.27 s interval: which frame is wrong cannot be told
        _row(
            "spNO.1",
            "a",
            2,
            1,
            40,
            "fear",
            "4",
            ok=False,
            reason="too long to trust",
            key="casme3/spNO.1/spNO.1_a_2",
            kind="micro-expression",
            failure="apex_outside",
        ),
        _row(
            "spNO.2",
            "a",
            0,
            0,
            5,
            "fear",
            "4",
            ok=False,
            reason="onset frame 0 and apex frame 0 below 1",
            key="casme3/spNO.2/spNO.2_a_0",
            kind="micro-expression",
            failure="below_first_frame",
        ),
        _row(
            "spNO.1",
            "b",
            9,
            10,
            3,
            "fear",
            "4",
            ok=False,
            reason="onset frame 9 is after offset frame 3",
            key="casme3/spNO.1/spNO.1_b_9",
            kind="micro-expression",
            failure="onset_after_offset",
        ),
        _row(
            "spNO.9",
            "x",
            1,
            2,
            3,
            "fear",
            "4",
            ok=False,
            reason="subject folder 'spNO.9' not found",
            key="casme3/spNO.9/spNO.9_x_1",
            kind="micro-expression",
            failure="folder_not_found",
        ),
    ]
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion", "Expression type"]
    body = [
        [r["subject"], r["filename"], r["onset"], r["apex"], r["offset"], r["aus"], "1", r["emotion"], r["kind"]]
        for r in rows
    ]
    ann = root / "part_A" / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    _xlsx(ann, [header, *body])
    for i, r in enumerate(rows):
        r["sheet_row"] = i + 2
        r["frames"] = data / r["subject"] / r["filename"] / "color"
    return {"root": root, "annotation": ann, "rows": rows}


def make_mmew(root) -> dict:
    """MMEW: ``MMEW_Micro_Exp.xlsx`` and ``Micro_Expression/<emotion>/S01-01-001/<n>.jpg``.
    Quirks: AU sides written after the number (``12L``, ``4R+7``, MMEW's notation), a blank apex,
    a remarks column, a clip filed under another emotion folder, bad rows (missing clip, duplicate)."""
    root = Path(root)
    base = root / "Micro_Expression"
    rows = [
        _row("S01", "S01-01-001", 1, 4, 8, "happiness", "6+12L", key="mmew/S01/S01-01-001", folder="happiness", n=9),
        _row("S02", "S02-03-002", 2, 5, 7, "surprise", "1+2+5", key="mmew/S02/S02-03-002", folder="surprise", n=8),
        _row(
            "S01",
            "S01-02-004",
            1,
            3,
            6,
            "disgust",
            "4R+7",
            key="mmew/S01/S01-02-004",
            folder="disgust",
            n=7,
            remarks="blink",
        ),
        _row(
            "S02",
            "S02-01-003",
            1,
            2,
            5,
            "fear",
            "20L+ 1",
            key="mmew/S02/S02-01-003",
            folder="surprise",
            n=5,
            notes=("contradiction",),
        ),
        _row(
            "S03",
            "S03-01-001",
            1,
            None,
            6,
            "others",
            "4",
            key="mmew/S03/S03-01-001",
            folder="others",
            n=6,
            apex_estimated=3,
        ),
        _row(
            "S03",
            "S03-09-009",
            1,
            2,
            3,
            "fear",
            "4",
            ok=False,
            reason="not found in any emotion folder",
            key="mmew/S03/S03-09-009",
            folder=None,
            n=0,
        ),
        _row(
            "S02",
            "S02-03-002",
            2,
            4,
            7,
            "surprise",
            "1+2",
            ok=False,
            reason="duplicate sample",
            key="mmew/S02/S02-03-002",
            folder=None,
            n=0,
        ),
    ]
    for i, r in enumerate(rows):
        if r["folder"]:
            write_clip(base / r["folder"] / r["filename"], range(1, r["n"] + 1), "{}.jpg", face_index=i)
            r["frames"] = base / r["folder"] / r["filename"]
    header = [
        "Subject",
        "Filename",
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        "Action Units",
        "Estimated Emotion",
        "remarks",
    ]
    body = [
        [r["subject"], r["filename"], r["onset"], r["apex"], r["offset"], r["aus"], r["emotion"], r.get("remarks")]
        for r in rows
    ]
    ann = root / "MMEW_Micro_Exp.xlsx"
    _xlsx(ann, [header, *body])
    for i, r in enumerate(rows):
        r["sheet_row"] = i + 2
    return {"root": root, "annotation": ann, "rows": rows}


def make_megc2019_gt(path, lines) -> Path:
    """Write a ``combined_3class_gt.csv`` (no header) from ``(dataset, subject, filename, label)`` tuples."""
    path = Path(path)
    path.write_text("".join(f"{d},{s},{f},{l}\n" for d, s, f, l in lines), encoding="utf-8")
    return path


MAKERS = {
    "casme2": make_casme2,
    "samm": make_samm,
    "smic": make_smic,
    "smic-e": make_smic_e,
    "casme3": make_casme3,
    "mmew": make_mmew,
}
