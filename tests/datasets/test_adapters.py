"""Each adapter against its fixture tree: every good row becomes a sample whose onset/apex/offset
positions point at the files carrying the sheet's frame numbers; every bad row is one failure
naming the file, the row and the sample."""
import re

import numpy as np
import pytest

from mepipe.aus import AU_LIST
from mepipe.datasets import load_dataset
from mepipe.frames import frame_number, list_frame_files


def _au_bits(text):
    """AU vector computed independently: every number in the cell that is in AU_LIST."""
    v = np.zeros(len(AU_LIST), np.uint8)
    for n in re.findall(r"\d+", str(text or "")):
        if int(n) in AU_LIST:
            v[AU_LIST.index(int(n))] = 1
    return v


def _check(spec, samples, failures, dataset_prefix):
    from mepipe.aus import parse_aus

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
        if r["emotion"]:
            assert s.emotion == r["emotion"]
        vec, _ = parse_aus(s.aus)
        np.testing.assert_array_equal(vec, _au_bits(r["aus"]))
    for r in bad:
        match = [f for f in failures if f.key == r["key"] and r["reason"] in f.reason]
        assert len(match) == 1, (r, failures)
        f = match[0]
        assert f.stage == "annotation"
        if "sheet_row" in r:
            assert f"row {r['sheet_row']} " in f.reason
            assert spec["annotation"].name in f.reason


def test_casme2(casme2_tree):
    samples, failures = load_dataset("casme2", casme2_tree["root"])
    _check(casme2_tree, samples, failures, "casme2")
    s = {x.key: x for x in samples}
    est = s["casme2/sub01/EP03_02"]
    assert est.extra["apex_cell"] == "/" and est.extra["apex_rule"] == "middle"
    # img7..img12: numeric, not lexicographic, order (img10 would sort before img7 as text)
    fear = s["casme2/sub02/EP06_01f"]
    assert (fear.onset, fear.apex, fear.offset) == (0, 3, 5)
    side = s["casme2/sub17/EP05_09"]
    assert side.extra["au_sides"] == "L" and side.extra["au_uncertain"] == "10"


def test_casme2_cropped_release(casme2_cropped_tree):
    samples, failures = load_dataset("casme2", casme2_cropped_tree["root"], frames="cropped")
    _check(casme2_cropped_tree, samples, failures, "casme2")
    assert all(list_frame_files(s.source)[0].name.startswith("reg_img") for s in samples)


def test_samm_title_block_and_quirks(samm_tree):
    samples, failures = load_dataset("samm", samm_tree["root"])
    _check(samm_tree, samples, failures, "samm")
    s = {x.key: x for x in samples}
    alt = s["samm/006/006_1_6"]
    assert alt.aus == "R12?+R15?" and alt.extra["aus_raw"] == "R12 or R15"
    assert alt.extra["au_uncertain"] == "12,15" and alt.apex_estimated and alt.extra["apex_cell"] == "-1"
    # 007_0998 .. 007_1003: 4-digit numbers crossing 999 -> 1000 stay in numeric order
    c = s["samm/007/007_3_1"]
    assert [frame_number(p) for p in list_frame_files(c.source)] == list(range(998, 1004))
    assert (c.onset, c.apex, c.offset) == (0, 3, 5)
    assert "Duration 9 differs" in s["samm/011/011_2_3"].extra["note"]
    assert s["samm/006/006_1_2"].extra["Notes"] == "checked"
    assert all(f"row {r['sheet_row']} " in f.reason for r in samm_tree["rows"] if r["ok"] is False
               for f in failures if f.key == r["key"])


def test_smic_original_release(smic_tree):
    samples, failures = load_dataset("smic", smic_tree["root"])
    _check(smic_tree, samples, failures, "smic")
    for s in samples:
        n = len(list_frame_files(s.source))
        assert s.apex_estimated and s.apex == (n - 1) // 2 and s.offset == n - 1
    assert not any("s1_ne_99" in s.sample_id for s in samples), "non_micro clips are not samples"


def test_smic_max_motion_apex_rule(smic_tree):
    samples, _ = load_dataset("smic", smic_tree["root"], apex_rule="max-motion")
    by = {s.key: s for s in samples}
    for r in smic_tree["rows"]:
        if r["ok"]:
            s = by[r["key"]]
            assert s.apex == r["peak"] and s.apex_estimated and s.extra["apex_rule"] == "max-motion"


def test_smic_extended_release(smic_e_tree):
    samples, failures = load_dataset("smic", smic_e_tree["root"])
    _check(smic_e_tree, samples, failures, "smic")
    by = {s.key: s for s in samples}
    assert by["smic/s1/s1_po_02"].emotion == "positive"  # blank Emotion cell: from the _po_ code
    for s in samples:
        assert s.apex_estimated and s.apex == s.onset + (s.offset - s.onset) // 2


def test_casme3_duplicates_onset_apex_and_type(casme3_tree):
    samples, failures = load_dataset("casme3", casme3_tree["root"])
    _check(casme3_tree, samples, failures, "casme3")
    by = {s.key: s for s in samples}
    assert by["casme3/spNO.1/a_1"].extra["filename"] == by["casme3/spNO.1/a_2"].extra["filename"] == "a"
    assert by["casme3/spNO.1/a_1"].source == by["casme3/spNO.1/a_2"].source
    b = by["casme3/spNO.1/b"]
    assert b.onset == b.apex and b.extra["onset_equals_apex"] == "true" and "onset == apex" in b.extra["note"]
    assert all(s.source.name == "color" for s in samples)
    assert not any(s.emotion == "happy" and s.subject == "spNO.2" for s in samples), "macro row skipped"


def test_mmew(mmew_tree):
    samples, failures = load_dataset("mmew", mmew_tree["root"])
    _check(mmew_tree, samples, failures, "mmew")
    by = {s.key: s for s in samples}
    assert by["mmew/S01/S01-02-004"].extra["remarks"] == "blink"


def test_annotation_override_and_unknown_option(casme2_tree, tmp_path):
    import shutil

    from mepipe.errors import AnnotationError

    other = tmp_path / "renamed_coding.xlsx"
    shutil.copy(casme2_tree["annotation"], other)
    samples, failures = load_dataset("casme2", casme2_tree["root"], annotation=other)
    assert samples and all("renamed_coding.xlsx" in f.reason for f in failures)
    with pytest.raises(AnnotationError, match="accepted: apex_rule, frames"):
        load_dataset("casme2", casme2_tree["root"], subset="HS")
    with pytest.raises(AnnotationError, match="unknown dataset"):
        load_dataset("casme9", casme2_tree["root"])
    with pytest.raises(AnnotationError, match="no CASME II coding file"):
        load_dataset("casme2", tmp_path)


def test_recipes_name_their_adapter_and_labels():
    from mepipe.labels import labels_from_recipe, resolve_spec
    from mepipe.recipe import load_recipe

    for name in ("casme2", "samm", "smic", "casme3", "mmew"):
        r = load_recipe(name)
        assert r["dataset"]["name"] == name
        assert r["flow"] == load_recipe("default")["flow"], "everything else inherited"
        spec = labels_from_recipe(r)
        resolve_spec(spec)
    assert labels_from_recipe(load_recipe("composite")) == "megc2019-3class"
