"""Each adapter against its fixture tree: every good row becomes a sample whose onset/apex/offset
positions point at the files carrying the sheet's frame numbers; every bad row is one failure
naming the file, the row and the sample."""

import re

import numpy as np
import pytest

from mepipe.aus import AU_LIST, parse_aus
from mepipe.datasets import load_dataset
from mepipe.errors import AnnotationError
from mepipe.frames import frame_number, list_frame_files


def _au_bits(text):
    """AU vector computed independently: every number in the cell that is in AU_LIST."""
    v = np.zeros(len(AU_LIST), np.uint8)
    for n in re.findall(r"\d+", str(text or "")):
        if int(n) in AU_LIST:
            v[AU_LIST.index(int(n))] = 1
    return v


def _check(spec, result, dataset_prefix):
    from mepipe.aus import parse_aus

    samples, failures = result
    by_key = {s.key: s for s in samples}
    assert len(by_key) == len(samples), "sample keys are unique"
    good = [r for r in spec["rows"] if r["ok"] is True]
    bad = [r for r in spec["rows"] if r["ok"] is False]
    assert sorted(by_key) == sorted(r["key"] for r in good)
    assert len(failures) == len(bad)
    for r in good:
        s = by_key[r["key"]]
        assert s.dataset.startswith(dataset_prefix)
        files = list_frame_files(s.source)
        assert s.source == r["frames"]
        if r["onset"] is not None:
            assert frame_number(files[s.onset]) == int(r["onset"])
        else:
            assert s.onset == 0
        if r["offset"] is not None:
            assert frame_number(files[s.offset]) == int(r["offset"])
        assert s.frame_numbers[0] == frame_number(files[s.onset])
        assert s.frame_numbers[1] == frame_number(files[s.apex])
        if r.get("apex_estimated") is not None:
            assert s.apex_estimated
            assert frame_number(files[s.apex]) == r["apex_estimated"]
        elif r["apex"] is not None:
            assert not s.apex_estimated
            assert frame_number(files[s.apex]) == int(r["apex"])
        assert s.onset <= s.apex <= (s.offset if s.offset is not None else len(files) - 1)
        if r.get("expect_emotion") or r["emotion"]:
            assert s.emotion == (r.get("expect_emotion") or r["emotion"])
        vec, _ = parse_aus(s.aus)
        np.testing.assert_array_equal(vec, _au_bits(r["aus"]))
        assert set(r.get("notes", ())) <= set(s.note_kinds()), (s.key, s.notes)
        assert s.apex_estimated == ("apex_estimated" in s.note_kinds())
    for r in bad:
        match = [f for f in failures if f.key == r["key"] and r["reason"] in f.reason]
        assert len(match) == 1, (r, failures)
        f = match[0]
        assert f.stage == "annotation"
        if r.get("failure"):
            assert result.failure_kinds[failures.index(f)] == r["failure"], f.reason
        if "sheet_row" in r:
            assert f"row {r['sheet_row']} " in f.reason
            assert spec["annotation"].name in f.reason


def _note(sample, kind):
    texts = [t for k, t in sample.notes if k == kind]
    assert len(texts) == 1, (sample.key, sample.notes)
    return texts[0]


def test_casme2(casme2_tree):
    result = load_dataset("casme2", casme2_tree["root"])
    _check(casme2_tree, result, "casme2")
    s = {x.key: x for x in result.samples}
    est = s["casme2/sub01/EP03_02"]
    assert _note(est, "apex_estimated") == "the sheet's apex cell is '/'; apex chosen by rule middle"
    typo = s["casme2/sub17/EP05_10"]
    assert _note(typo, "apex_estimated") == "sheet apex 2 is before onset 4; apex chosen by rule middle"
    # img7..img12: numeric, not lexicographic, order (img10 would sort before img7 as text)
    fear = s["casme2/sub02/EP06_01f"]
    assert (fear.onset, fear.apex, fear.offset) == (0, 3, 5)
    _, toks = parse_aus(s["casme2/sub17/EP05_09"].aus)
    assert [(t.au, t.side, t.uncertain) for t in toks] == [(10, "L", True)]
    assert "'blink' is not an Action Unit" in _note(s["casme2/sub02/EP01_13"], "au_raw")
    assert result.rows == len(casme2_tree["rows"]) and result.source == casme2_tree["annotation"]


def test_casme2_cropped_release(casme2_cropped_tree):
    result = load_dataset("casme2", casme2_cropped_tree["root"], frames="cropped")
    _check(casme2_cropped_tree, result, "casme2")
    assert all(list_frame_files(s.source)[0].name.startswith("reg_img") for s in result.samples)


def test_samm_title_block_and_quirks(samm_tree):
    result = load_dataset("samm", samm_tree["root"])
    _check(samm_tree, result, "samm")
    samples, failures = result
    s = {x.key: x for x in samples}
    alt = s["samm/006/006_1_6"]
    assert alt.aus == "R12 or R15" and [(t.au, t.alternative) for t in parse_aus(alt.aus)[1]] == [(12, 1), (15, 1)]
    assert alt.apex_estimated and _note(alt, "apex_estimated").startswith("the sheet's apex is -1 (not coded)")
    assert all(x.objective == "1" for x in samples)
    # 007_0998 .. 007_1003: 4-digit numbers crossing 999 -> 1000 stay in numeric order
    c = s["samm/007/007_3_1"]
    assert [frame_number(p) for p in list_frame_files(c.source)] == list(range(998, 1004))
    assert (c.onset, c.apex, c.offset) == (0, 3, 5)
    assert "Duration 9 differs" in _note(s["samm/011/011_2_3"], "contradiction")
    assert s["samm/006/006_1_2"].extra["Notes"] == "checked"
    assert all(
        f"row {r['sheet_row']} " in f.reason
        for r in samm_tree["rows"]
        if r["ok"] is False
        for f in failures
        if f.key == r["key"]
    )


def test_smic_original_release(smic_tree):
    result = load_dataset("smic", smic_tree["root"])
    _check(smic_tree, result, "smic")
    for s in result.samples:
        n = len(list_frame_files(s.source))
        assert s.apex_estimated and s.apex == (n - 1) // 2 and s.offset == n - 1
    assert not any("s1_ne_99" in s.sample_id for s in result.samples), "non_micro clips are not samples"


def test_smic_max_motion_apex_rule(smic_tree):
    samples, _ = load_dataset("smic", smic_tree["root"], apex_rule="max-motion")
    by = {s.key: s for s in samples}
    for r in smic_tree["rows"]:
        if r["ok"]:
            s = by[r["key"]]
            assert s.apex == r["peak"] and s.apex_estimated
            assert _note(s, "apex_estimated") == "SMIC gives no apex; apex chosen by rule max-motion"


def test_smic_extended_release(smic_e_tree):
    result = load_dataset("smic", smic_e_tree["root"])
    _check(smic_e_tree, result, "smic")
    samples = result.samples
    by = {s.key: s for s in samples}
    assert by["smic/s1/s1_po_02"].emotion == "positive"  # blank Emotion cell: from the _po_ code
    for s in samples:
        assert s.apex_estimated and s.apex == s.onset + (s.offset - s.onset) // 2


def test_casme3_ids_onset_apex_and_type(casme3_tree):
    result = load_dataset("casme3", casme3_tree["root"])
    _check(casme3_tree, result, "casme3")
    by = {s.key: s for s in result.samples}
    a3, a15 = by["casme3/spNO.1/spNO.1_a_3"], by["casme3/spNO.1/spNO.1_a_15"]
    assert a3.extra["filename"] == a15.extra["filename"] == "a" and a3.source == a15.source
    b = by["casme3/spNO.1/spNO.1_b_2"]
    assert b.onset == b.apex and "onset and apex are both frame 2" in _note(b, "onset_equals_apex")
    assert _note(by["casme3/spNO.1/spNO.1_a_1"], "long_interval") == "onset..offset 1..38 lasts 1.23 s at 30 fps"
    assert all(s.source.name == "color" for s in result.samples)
    assert not any(s.emotion == "happy" and s.subject == "spNO.2" for s in result.samples), "macro row skipped"
    assert result.skipped == 1 and result.rows == len(casme3_tree["rows"]) - 1


def test_casme3_ids_do_not_depend_on_other_rows(casme3_tree, tmp_path):
    """Dropping rows from the sheet leaves the other samples' ids as they were."""
    import shutil

    from openpyxl import load_workbook

    wb = load_workbook(casme3_tree["annotation"])
    ws = wb.active
    for r in range(ws.max_row, 1, -1):
        if ws.cell(r, 8).value != "disgust":
            continue
        ws.delete_rows(r)
    fewer = tmp_path / "fewer.xlsx"
    wb.save(fewer)
    full = {s.key for s in load_dataset("casme3", casme3_tree["root"]).samples}
    part = load_dataset("casme3", casme3_tree["root"], annotation=fewer).samples
    assert part and {s.key for s in part} < full and all(s.emotion != "disgust" for s in part)
    root = tmp_path / "empty"
    root.mkdir()
    shutil.copy(fewer, root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    (root / "notes.txt").write_text("x")
    with pytest.raises(
        AnnotationError,
        match=r"tried clip layout Part_A_ME_clip/frame.*video layout spNO.*holds: "
        r"cas\(me\)3_part_A_ME_label_JpgIndex_v2.xlsx, notes.txt",
    ):
        load_dataset("casme3", root)
    with pytest.raises(AnnotationError, match="tried clip layout"):
        load_dataset("casme3", casme3_tree["root"], layout="clip")


def test_mmew(mmew_tree):
    result = load_dataset("mmew", mmew_tree["root"])
    _check(mmew_tree, result, "mmew")
    by = {s.key: s for s in result.samples}
    assert by["mmew/S01/S01-02-004"].extra["remarks"] == "blink"
    sides = {
        k: [(t.au, t.side) for t in parse_aus(by[k].aus)[1]] for k in ("mmew/S01/S01-01-001", "mmew/S01/S01-02-004")
    }
    assert sides == {"mmew/S01/S01-01-001": [(6, ""), (12, "L")], "mmew/S01/S01-02-004": [(4, "R"), (7, "")]}
    assert _note(by["mmew/S02/S02-01-003"], "contradiction").startswith(
        "clip is filed under surprise/ but the sheet says fear"
    )


def test_annotation_override_and_unknown_option(casme2_tree, tmp_path):
    import shutil

    other = tmp_path / "renamed_coding.xlsx"
    shutil.copy(casme2_tree["annotation"], other)
    samples, failures = load_dataset("casme2", casme2_tree["root"], annotation=other)
    assert samples and all("renamed_coding.xlsx" in f.reason for f in failures)
    with pytest.raises(AnnotationError, match="accepted: apex_rule, frames, sheet"):
        load_dataset("casme2", casme2_tree["root"], subset="HS")
    with pytest.raises(AnnotationError, match="unknown dataset"):
        load_dataset("casme9", casme2_tree["root"])
    with pytest.raises(AnnotationError, match="no CASME II coding file"):
        load_dataset("casme2", tmp_path)


def test_recipes_name_their_adapter_and_no_labels():
    from mepipe.recipe import RecipeError, available_recipes, load_recipe

    for name in ("casme2", "samm", "smic", "casme3", "mmew"):
        r = load_recipe(name)
        assert r["dataset"]["name"] == name
        assert r["flow"] == load_recipe("default")["flow"], "everything else inherited"
        assert "labels" not in r  # labels are chosen at training time
    assert "composite" not in available_recipes()
    with pytest.raises(RecipeError, match=r"\[labels\] is no longer part of a recipe.*--label-map"):
        from mepipe.recipe_schema import validate_recipe

        validate_recipe({"labels": {"map": "casme2-5class"}}, "old.toml")
