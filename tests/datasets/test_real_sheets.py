"""The adapters on the real published annotation sheets, inside releases laid out as the providers
ship them (:mod:`.releases`): every usable row loads, and every sample matches its sheet row
(frame numbers and positions, emotion, AU tokens, objective class, subject, id, notes). Skipped,
naming the folder, where ``../shared/data/annotations`` is absent."""

import io
import logging
import re
from collections import Counter

import numpy as np
import pytest

from mepipe.aus import AU_LIST, cell_text, format_aus, parse_au_tokens, parse_aus, unparsed
from mepipe.datasets import load_dataset
from mepipe.frames import frame_number, list_frame_files
from mepipe.labels import apply_label_map, select_composite

from . import releases as rel


def check_frames(s, onset, apex, offset):
    """The sample's positions point at the files numbered as the sheet says; an apex that is
    missing or outside onset..offset is the middle position, estimated and noted."""
    nums = [frame_number(p) for p in list_frame_files(s.source)]
    assert (nums[s.onset], nums[s.offset]) == (onset, offset), s.key
    if apex is not None and onset <= apex <= offset:
        assert not s.apex_estimated and nums[s.apex] == apex, s.key
    else:
        assert s.apex_estimated and s.apex == s.onset + (s.offset - s.onset) // 2, s.key
    assert s.apex_estimated == ("apex_estimated" in s.note_kinds()), s.key
    assert s.frame_numbers == (nums[s.onset], nums[s.apex], nums[s.offset])


def au_bits(cell):
    """The AU vector read independently of the grammar: every number of the cell in AU_LIST."""
    v = np.zeros(len(AU_LIST), np.uint8)
    for n in re.findall(r"\d+", cell_text(cell)):
        if int(n) in AU_LIST:
            v[AU_LIST.index(int(n))] = 1
    return v


def check_aus(s, cell):
    assert s.aus == cell_text(cell)
    vec, toks = parse_aus(s.aus)
    assert toks == parse_au_tokens(cell)
    np.testing.assert_array_equal(vec, au_bits(cell), err_msg=f"{s.key}: {cell!r}")
    assert ("au_raw" in s.note_kinds()) == bool(unparsed(toks)), s.key


def by_row(samples):
    out = {int(s.extra["annotation_row"]): s for s in samples}
    assert len(out) == len(samples)
    return out


def note(s, kind):
    (text,) = [t for k, t in s.notes if k == kind]
    return text


# --------------------------------------------------------------------------------------------- AU cells


def distinct_au_cells(annotations):
    cells = [r["Action Units"] for r in rel.sheet_rows(annotations / rel.CASME2, "Sheet1", 1)]
    cells += [r["Action Units"] for r in rel.sheet_rows(annotations / rel.SAMM, "MICRO_ONLY", 14)]
    cells += [r["AU"] for r in rel.sheet_rows(annotations / rel.CASME3, "label", 1)]
    return sorted({c for c in cells}, key=repr)


# real cells, each with the tokens it must give: (au, side, intensity, asymmetric, alternative, reference)
REAL_FORMS = {
    "A/L12": [(12, "", "", True, 1, False), (12, "L", "", False, 1, False)],
    "10A/B": [(10, "", "A", False, 1, False), (10, "", "B", False, 1, False)],
    "(R6 or R12) + R15": [
        (6, "R", "", False, 1, False),
        (12, "R", "", False, 1, False),
        (15, "R", "", False, 0, False),
    ],
    "R14A or 17A or 24A": [
        (14, "R", "A", False, 1, False),
        (17, "", "A", False, 1, False),
        (24, "", "A", False, 1, False),
    ],
    "ref(7B)+43": [(7, "", "B", False, 0, True), (43, "", "", False, 0, False)],
    "A1B+A2C": [(1, "", "B", True, 0, False), (2, "", "C", True, 0, False)],
    "T28+14": [(28, "T", "", False, 0, False), (14, "", "", False, 0, False)],
    "12+15 ": [(12, "", "", False, 0, False), (15, "", "", False, 0, False)],
    "?": [],
    12: [(12, "", "", False, 0, False)],
}


def test_every_au_cell_of_the_sheets(annotations):
    cells = distinct_au_cells(annotations)
    assert len(cells) > 150
    kept_raw = set()
    for cell in cells:
        vec, toks = parse_aus(cell)  # never raises
        np.testing.assert_array_equal(vec, au_bits(cell), err_msg=repr(cell))
        assert parse_au_tokens(format_aus(toks)) == toks, cell
        if unparsed(toks):
            kept_raw.add(cell)
    assert kept_raw == {"R14+17+soft focus"}, "every other cell is understood whole"
    for cell, want in REAL_FORMS.items():
        assert cell in cells, f"{cell!r} is a cell of the published sheets"
        got = [(t.au, t.side, t.intensity, t.asymmetric, t.alternative, t.reference) for t in parse_au_tokens(cell)]
        assert got == want, cell


# --------------------------------------------------------------------------------------------- CASME II


@pytest.fixture(scope="module")
def casme2_release(annotations, tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2-real")
    rows = rel.casme2(root, annotations)
    objective = rel.casme2_2019(root, annotations)  # both official sheets side by side
    return root, rows, objective


@pytest.mark.parametrize("sheet", ["2014", "2019"])
def test_casme2_every_row_of_both_sheets(casme2_release, sheet):
    root, rows, objective = casme2_release
    result = load_dataset("casme2", root, sheet=sheet)
    assert (len(result.samples), len(result.failures), result.rows) == (255, 0, 255)
    assert result.source.name == {"2014": rel.CASME2, "2019": "CASME2-coding-20190701.xlsx"}[sheet]
    got = by_row(result.samples)
    for r in rows:
        s = got[r["_row"]]
        assert s.key == f"casme2/sub{int(r['Subject']):02d}/{r['Filename']}"
        relabelled = sheet == "2019" and r["Subject"] == "24" and r["Filename"] in rel.CASME2_2019_RELABELS
        assert s.emotion == ("surprise" if relabelled else r["Estimated Emotion"])
        assert s.objective == (objective[r["_row"]] if sheet == "2019" else "")
        check_frames(s, rel.as_int(r["OnsetFrame"]), rel.as_int(r["ApexFrame"]), rel.as_int(r["OffsetFrame"]))
        check_aus(s, r["Action Units"])
    assert note(got[next(r["_row"] for r in rows if r["ApexFrame"] == "/")], "apex_estimated").startswith(
        "the sheet's apex cell is '/'"
    )


def test_casme2_sheet_choice_is_reported(casme2_release, caplog):
    root = casme2_release[0]
    with caplog.at_level(logging.INFO, logger="mepipe.datasets"):
        auto = load_dataset("casme2", root)
    assert auto.source.name == "CASME2-coding-20190701.xlsx"
    assert "both CASME II coding sheets found" in auto.choice and auto.choice in caplog.text
    assert load_dataset("casme2", root, sheet="2014").source.name == rel.CASME2
    from mepipe.errors import AnnotationError

    with pytest.raises(AnnotationError, match="not both"):
        load_dataset("casme2", root, annotation=rel.CASME2, sheet="2014")


def test_casme2_sheets_against_the_megc_list(casme2_release, annotations):
    """The emotion map gives two clips more than the MEGC 2019 list on the 2014 sheet, five on the
    2019 sheet (its three sub24 surprises); the list itself selects 145 from either."""
    root = casme2_release[0]
    listed = {(line[1], line[2]) for line in rel.megc_lines(annotations, "casme2")}
    extra = {}
    for sheet in ("2014", "2019"):
        samples = load_dataset("casme2", root, sheet=sheet).samples
        _, kept = apply_label_map(samples, "megc2019-3class")
        mapped = {(s.subject, s.sample_id) for s in kept}
        assert listed <= mapped
        extra[sheet] = mapped - listed
        _, selected, failures = select_composite({"casme2": samples}, annotations / rel.MEGC)
        assert len(selected) == 145 and not [f for f in failures if f.key.startswith("casme2/")]
    assert extra["2014"] == {("sub04", "EP12_01f"), ("sub05", "EP09_05f")}
    assert extra["2019"] - extra["2014"] == {("sub24", f) for f in rel.CASME2_2019_RELABELS}


# --------------------------------------------------------------------------------------------- SAMM


def test_samm_every_row(annotations, tmp_path):
    rows = rel.samm(tmp_path, annotations)
    result = load_dataset("samm", tmp_path)
    assert (len(result.samples), len(result.failures), result.rows) == (159, 0, 159)
    got = by_row(result.samples)
    for r in rows:
        s = got[r["_row"]]
        assert s.key == f"samm/{r['Subject']}/{r['Filename']}"
        assert (s.emotion, s.objective) == (r["Estimated Emotion"], str(r["Objective Classes"]))
        on, ap, off = (rel.as_int(r[k]) for k in ("Onset Frame", "Apex Frame", "Offset Frame"))
        check_frames(s, on, ap, off)
        check_aus(s, r["Action Units"])
        assert ("contradiction" in s.note_kinds()) == (r["Duration"] != off - on + 1)
        if r["Notes"]:
            assert s.extra["Notes"] == r["Notes"]
    by_key = {s.key: s for s in result.samples}
    assert (
        note(by_key["samm/028/028_4_1"], "apex_estimated")
        == "sheet apex 1143 is after offset 1134; apex chosen by rule middle"
    )
    assert (
        note(by_key["samm/032/032_3_1"], "apex_estimated")
        == "sheet apex 1930 is before onset 4896; apex chosen by rule middle"
    )
    assert sum(s.apex_estimated for s in result.samples) == 2
    assert "'soft focus' is not an Action Unit" in note(by_key["samm/026/026_5_1"], "au_raw")


# --------------------------------------------------------------------------------------------- SMIC


def test_smic_original_release(annotations, tmp_path):
    clips = rel.smic_original(tmp_path, annotations)
    result = load_dataset("smic", tmp_path)
    assert (len(result.samples), len(result.failures), result.rows) == (164, 0, 164)
    got = {s.key: s for s in result.samples}
    for c in clips:
        s = got[f"smic/{c['subject']}/{c['clip']}"]
        assert s.emotion == c["emotion"] and s.extra["release"] == "SMIC"
        check_frames(s, c["numbers"][0], None, c["numbers"][-1])
        assert note(s, "apex_estimated") == "SMIC gives no apex; apex chosen by rule middle"
    _, selected, failures = select_composite({"smic": result.samples}, annotations / rel.MEGC)
    assert len(selected) == 164 and not [f for f in failures if f.key.startswith("smic/")]


@pytest.fixture(scope="module")
def smic_e_release(annotations, tmp_path_factory):
    root = tmp_path_factory.mktemp("smic-e-real")
    return root, rel.smic_e(root, annotations)


def _check_smic_e(s, r, subset):
    assert s.key == f"{'smic' if subset == 'HS' else 'smic-' + subset.lower()}/s{r['Subject']}/{r['Filename']}"
    assert s.emotion == r["Emotion"] and s.extra["release"] == "SMIC-E"
    code = {"ne": "negative", "po": "positive", "sur": "surprise"}[r["Filename"].split("_")[1]]
    assert ("contradiction" in s.note_kinds()) == (code != r["Emotion"]), s.key
    assert ("second_interval" in s.note_kinds()) == (r["Onset2F"] is not None), s.key


def test_smic_hs_e_every_usable_row(smic_e_release):
    root, rows = smic_e_release
    result = load_dataset("smic", root)
    assert (len(result.samples), len(result.failures), result.rows, result.sheet) == (160, 2, 162, "HS")
    got = by_row(result.samples)
    for r in rows["HS"]:
        if r["_row"] in (74, 102):
            continue
        s = got[r["_row"]]
        _check_smic_e(s, r, "HS")
        check_frames(s, r["OnsetF"], None, r["OffsetF"])
    fails = dict(zip((f.key for f in result.failures), zip(result.failure_kinds, (f.reason for f in result.failures))))
    kind, reason = fails["smic/s1/s1_ne_03"]
    assert kind == "frame_not_found" and "row 74 " in reason and "onset frame 658536 has no frame file" in reason
    assert "numbers 650000..650699" in reason
    kind, reason = fails["smic/s3/s3_ne_20"]
    assert kind == "folder_not_found" and "row 102 " in reason and "SMIC-HS-E_annotation.xlsx" in reason
    s = {x.key: x for x in result.samples}["smic/s18/s18_sur_03"]
    assert note(s, "contradiction") == (
        "the sheet's emotion is negative, the clip name s18_sur_03 says surprise; the sheet's emotion is used"
    )


def test_smic_hs_e_second_intervals_as_samples(smic_e_release):
    root, rows = smic_e_release
    result = load_dataset("smic", root, second_interval="sample")
    seconds = {s.sample_id[:-2]: s for s in result.samples if s.extra.get("interval") == "2"}
    with_second = {r["Filename"]: r for r in rows["HS"] if r["Onset2F"] is not None}
    assert len(result.samples) == 160 + len(with_second) == 165 and set(seconds) == set(with_second)
    for name, r in with_second.items():
        s = seconds[name]
        assert s.sample_id == f"{name}_2" and s.emotion == r["Emotion"]
        check_frames(s, r["Onset2F"], None, r["Offset2F"])
        assert (
            note(s, "second_interval")
            == f"second interval of {name}: Onset2F..Offset2F {r['Onset2F']}..{r['Offset2F']}"
        )


def test_smic_vis_e_every_row(smic_e_release):
    root, rows = smic_e_release
    result = load_dataset("smic", root, subset="VIS")
    assert (len(result.samples), len(result.failures), result.rows, result.sheet) == (71, 0, 71, "VIS")
    got = by_row(result.samples)
    for r in rows["VIS"]:
        s = got[r["_row"]]
        _check_smic_e(s, r, "VIS")
        check_frames(s, r["OnsetF"], None, r["OffsetF"])


# --------------------------------------------------------------------------------------------- CAS(ME)^3

CASME3_BROKEN = {
    130: "apex_outside",
    751: "onset_after_offset",
    752: "below_first_frame",
    798: "below_first_frame",
    800: "below_first_frame",
}


@pytest.fixture(scope="module", params=["video", "clip"])
def casme3_release(request, annotations, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"casme3-{request.param}")
    return request.param, root, rel.casme3(root, annotations, request.param)


@pytest.mark.slow
def test_casme3_every_usable_row(casme3_release):
    layout, root, rows = casme3_release
    result = load_dataset("casme3", root)
    assert (len(result.samples), len(result.failures), result.rows) == (855, 5, 860)
    assert len({r["Subject"] for r in rows}) == 94
    got = by_row(result.samples)
    for r in rows:
        if r["_row"] in CASME3_BROKEN:
            continue
        s = got[r["_row"]]
        assert s.key == f"casme3/{r['Subject']}/{r['Subject']}_{r['Filename']}_{r['Onset']}"
        assert (s.emotion, s.objective, s.extra["filename"]) == (
            r["emotion"].lower(),
            r["Objective class"],
            r["Filename"],
        )
        on, ap, off = (int(r[k]) for k in ("Onset", "Apex", "Offset"))
        check_frames(s, on, ap, off)
        check_aus(s, r["AU"])
        assert ("long_interval" in s.note_kinds()) == ((off - on) / 30 > 1), s.key
        assert ("onset_equals_apex" in s.note_kinds()) == (on == ap), s.key
        want = (
            root / "Part_A_ME_clip" / "frame" / s.sample_id
            if layout == "clip"
            else root / "data" / "part_A" / r["Subject"] / r["Filename"] / "color"
        )
        assert s.source == want
    assert {s.emotion for s in result.samples} == {"anger", "disgust", "fear", "happy", "others", "sad", "surprise"}
    assert (
        note({s.key: s for s in result.samples}["casme3/spNO.214/spNO.214_c_5"], "long_interval")
        == "onset..offset 5..3460 lasts 115.17 s at 30 fps"
    )
    sheet = {r["_row"]: r for r in rows}
    for f, kind in zip(result.failures, result.failure_kinds):
        rowno = int(re.search(r" row (\d+) ", f.reason).group(1))
        r = sheet[rowno]
        assert CASME3_BROKEN[rowno] == kind, f.reason
        assert f.key == f"casme3/{r['Subject']}/{r['Subject']}_{r['Filename']}_{r['Onset']}"
        assert f"(sheet: onset {r['Onset']}, apex {r['Apex']}, offset {r['Offset']})" in f.reason


@pytest.mark.slow
def test_casme3_ids_stay_when_rows_go(casme3_release, tmp_path):
    """Ids name the expression, not its rank among the rows: a sheet without the ``others`` rows
    gives the same ids to every other row."""
    from openpyxl import load_workbook

    _, root, _ = casme3_release
    src = root / "annotation" / rel.CASME3
    wb = load_workbook(src)
    ws = wb["label"]
    for r in range(ws.max_row, 1, -1):
        if str(ws.cell(r, 8).value).lower() == "others":
            ws.delete_rows(r)
    fewer = tmp_path / "fewer.xlsx"
    wb.save(fewer)
    full = {(s.extra["filename"], s.subject, s.frame_numbers): s.key for s in load_dataset("casme3", root).samples}
    part = load_dataset("casme3", root, annotation=fewer).samples
    assert 600 < len(part) < len(full)
    assert all(full[(s.extra["filename"], s.subject, s.frame_numbers)] == s.key for s in part)


def test_casme3_check_command(casme3_release):
    from mepipe.datasets.cli import main

    _, root, rows = casme3_release
    out = io.StringIO()
    assert main(["check", "--dataset", "casme3", "--root", str(root)], out=out) == 1
    text = out.getvalue()
    long = sum((int(r["Offset"]) - int(r["Onset"])) / 30 > 1 for r in rows if r["_row"] not in CASME3_BROKEN)
    kinds = Counter(CASME3_BROKEN.values())
    assert "casme3: 860 rows, 855 samples, 5 failures" in text
    assert f"sheet used: {root / 'annotation' / rel.CASME3}, sheet 'label'" in text
    assert (
        "failures by reason: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        in text
    )
    assert f"long_interval {long}" in text and "5 problem row(s)" in text


# --------------------------------------------------------------------------------------------- MEGC 2019 composite


@pytest.fixture(scope="module")
def composite_releases(annotations, tmp_path_factory):
    """CASME II (2014 sheet), SAMM and the original SMIC-HS release, as the providers ship them."""
    out = {}
    for name, build in (("casme2", rel.casme2), ("samm", rel.samm), ("smic", rel.smic_original)):
        root = tmp_path_factory.mktemp(f"{name}-composite")
        build(root, annotations)
        out[name] = load_dataset(name, root).samples
    return out


def test_composite_is_exactly_the_megc2019_set_from_the_rules_and_from_the_list(composite_releases, annotations):
    from mepipe.labels import MEGC2019_REFERENCE, MEGC2019_SUBJECTS, megc2019_from_list, samples_table, select_megc2019

    table = samples_table([s for v in composite_releases.values() for s in v])
    assert len(table["key"]) == 255 + 159 + 164  # every annotated clip is loaded; the selection chooses
    y_rules, info = select_megc2019(table)
    assert info["matches_reference"] and info["n"] == 442, info["counts"]
    assert info["counts"] == MEGC2019_REFERENCE and info["subjects"] == MEGC2019_SUBJECTS
    assert sum(info["subjects"].values()) == 68
    assert info["left_out"]["casme2: apex not annotated or equal to the onset"] == 2
    y_list, info_list = select_megc2019(table, annotations / rel.MEGC)
    assert info_list["membership"] == "list" and info_list["n"] == 442
    assert info_list["disagreements"] == [] and info_list["list_problems"] == []
    assert (y_rules == y_list).all()  # the rules select exactly the official list, with its labels
    listed, _ = megc2019_from_list(table, annotations / rel.MEGC)
    keys = {k for k, v in zip(table["key"], listed) if v >= 0}
    assert len(keys) == 442


def test_composite_from_smic_e_is_partial_and_says_why(composite_releases, annotations, tmp_path):
    from mepipe.labels import composite_table, samples_table, select_megc2019

    rel.smic_e(tmp_path, annotations)
    smic_e = load_dataset("smic", tmp_path).samples
    table = samples_table(composite_releases["casme2"] + composite_releases["samm"] + smic_e)
    _, info = select_megc2019(table)
    assert not info["matches_reference"] and info["counts"]["smic"] != {"negative": 70, "positive": 51, "surprise": 43}
    text = composite_table(info)
    assert "smic" in text and "<- differs" in text and "442" in text
    _, info = select_megc2019(table, annotations / rel.MEGC)
    assert any("s01_ne_02" in p or "s1_ne_02" in p for p in info["list_problems"])  # missing from SMIC-HS-E
