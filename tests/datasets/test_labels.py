"""Label maps and the MEGC 2019 composite selection, on the fixture trees."""

from collections import Counter

import pytest

from mepipe.datasets import load_dataset
from mepipe.labels import (
    MEGC2019_REFERENCE,
    LabelMapError,
    apply_label_map,
    count_classes,
    select_composite,
)

from .fixtures import make_megc2019_gt

# the composite map as the MEGC 2019 protocol states it, per source dataset
MEGC = {
    "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "samm": {
        "Anger": "negative",
        "Contempt": "negative",
        "Disgust": "negative",
        "Fear": "negative",
        "Sadness": "negative",
        "Happiness": "positive",
        "Surprise": "surprise",
    },
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}


@pytest.fixture(scope="module")
def composite(casme2_tree, samm_tree, smic_tree):
    out = {}
    for name, tree in (("casme2", casme2_tree), ("samm", samm_tree), ("smic", smic_tree)):
        out[name] = (tree, load_dataset(name, tree["root"])[0])
    return out


def test_megc2019_map_counts_per_class(composite):
    for name, (tree, samples) in composite.items():
        classes, kept = apply_label_map(samples, "megc2019-3class")
        assert classes == ["negative", "positive", "surprise"]
        want = Counter(MEGC[name][r["emotion"]] for r in tree["rows"] if r["ok"] and r["emotion"] in MEGC[name])
        assert count_classes(classes, kept) == {c: want.get(c, 0) for c in classes}
        dropped = {s.emotion for s in samples} - {s.emotion for s in kept}
        assert dropped == (
            {"fear", "sadness", "others"} if name == "casme2" else {"Other"} if name == "samm" else set()
        )
        assert all(classes[s.label] == MEGC[name][s.emotion] for s in kept)
        assert all(s.label == -1 for s in samples), "input samples are not modified"


def test_five_class_protocols(composite):
    c2 = composite["casme2"][1]
    classes, kept = apply_label_map(c2, "casme2-5class")
    assert classes == ["happiness", "disgust", "repression", "surprise", "others"]
    assert sorted(classes[s.label] for s in kept) == sorted(
        s.emotion for s in c2 if s.emotion not in ("fear", "sadness")
    )
    sm = composite["samm"][1]
    classes, kept = apply_label_map(sm, "samm-5class")
    assert classes == ["happiness", "anger", "contempt", "surprise", "others"]
    got = {s.emotion: classes[s.label] for s in kept}
    assert got == {
        "Anger": "anger",
        "Happiness": "happiness",
        "Contempt": "contempt",
        "Other": "others",
        "Surprise": "surprise",
    }


def test_native_and_inline_maps(composite):
    sm = composite["samm"][1]
    classes, kept = apply_label_map(sm, "native")
    assert classes == sorted({s.emotion.lower() for s in sm})  # the emotions present, folded, sorted
    assert len(kept) == len(sm) and all(classes[s.label] == s.emotion.lower() for s in kept)
    spec = {
        "classes": ["Pos", "Neg"],
        "map": {" HAPPINESS ": "pos", "anger": "neg", "samm/Fear": "NEG"},
        "drop_unmapped": True,
    }
    classes, kept = apply_label_map(sm, spec)
    assert classes == ["Pos", "Neg"]
    assert sorted((s.emotion, s.label) for s in kept) == [("Anger", 1), ("Fear", 1), ("Happiness", 0)]
    with pytest.raises(LabelMapError, match="has no class"):
        apply_label_map(sm, {"classes": ["anger"], "map": {}, "drop_unmapped": False})
    with pytest.raises(LabelMapError, match="not one of the classes"):
        apply_label_map(sm, {"classes": ["a"], "map": {"anger": "b"}})
    with pytest.raises(LabelMapError, match="unknown label map"):
        apply_label_map(sm, "casme2-9class")


def test_select_composite_from_gt_list(composite, tmp_path):
    loaded = {k: v[1] for k, v in composite.items()}
    lines = [
        ("smic", "s01", "s1_ne_01", 0),  # zero-padded subject, as the official list writes it
        ("smic", "s2", "s2_sur_01", 2),
        ("casme2", "sub01", "EP02_01f", 1),
        ("casme2", "sub01", "EP03_02", 0),
        ("samm", "6", "006_1_2", 0),  # numeric SAMM subject
        ("samm", "007", "007_3_1", 0),
        ("samm", "011", "011_2_4", 2),
        ("casme2", "sub04", "EP12_01f", 2),
        ("casme2", "sub24", "EP02_07", 0),  # not in this copy: a failure
        ("samm", "6", "006_1_2", 0),  # listed twice: a failure
    ]
    gt = make_megc2019_gt(tmp_path / "combined_3class_gt.csv", lines)
    classes, selected, failures = select_composite(loaded, gt)
    assert classes == ["negative", "positive", "surprise"]
    assert [(s.dataset, s.sample_id, s.label) for s in selected] == [
        (d, f if d != "smic" else f, l) for d, _, f, l in lines[:8]
    ]
    assert sorted(f.key for f in failures) == ["casme2/sub24/EP02_07", "samm/6/006_1_2"]
    assert any("line 9" in f.reason and "not in the loaded samples" in f.reason for f in failures)
    assert any("line 10" in f.reason and "listed twice" in f.reason for f in failures)
    assert all("megc2019_note" not in s.extra for s in selected), "list labels agree with the map here"
    # a disagreeing label: the list wins, and the sample says so
    gt2 = make_megc2019_gt(tmp_path / "gt2.csv", [("casme2", "sub01", "EP02_01f", 2)])
    _, sel2, _ = select_composite(loaded, gt2)
    assert sel2[0].label == 2 and "maps to positive" in sel2[0].extra["megc2019_note"]


def test_reference_counts_are_the_published_ones():
    tot = {k: sum(v.values()) for k, v in MEGC2019_REFERENCE.items()}
    assert tot == {"smic": 164, "casme2": 145, "samm": 133} and sum(tot.values()) == 442
