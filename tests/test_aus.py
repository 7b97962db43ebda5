"""AU cells from every dataset's notation to tokens and the one 21-AU vector."""

import numpy as np
import pytest

from mepipe.aus import AU_LIST, AUParseError, format_aus, mirror_aus, parse_au_tokens, parse_aus


def vec(*aus):
    v = np.zeros(len(AU_LIST), np.uint8)
    for a in aus:
        v[AU_LIST.index(a)] = 1
    return v


@pytest.mark.parametrize(
    "text,aus",
    [
        ("4+7", (4, 7)),
        ("AU4+AU7", (4, 7)),
        ("R12", (12,)),
        ("L14+AU1", (14, 1)),
        ("12?", (12,)),
        ("1,2", (1, 2)),
        (12.0, (12,)),
        (12, (12,)),
        ("", ()),
        ("/", ()),
        ("?", ()),
        (float("nan"), ()),
        ("12B+4C", (12, 4)),
        ("1 2", (1, 2)),
    ],
)
def test_vector(text, aus):
    v, _ = parse_aus(text)
    assert np.array_equal(v, vec(*aus))


def T(au, side="", intensity="", asym=False, alt=0, ref=False, unc=False):
    return (au, side, intensity, asym, alt, ref, unc)


def fields(tokens):
    return [(t.au, t.side, t.intensity, t.asymmetric, t.alternative, t.reference, t.uncertain) for t in tokens]


# every notation of the published sheets (SAMM, CASME II, CAS(ME)^3, SMIC, MMEW), token by token
FORMS = [
    ("14C", [T(14, intensity="C")]),
    ("A14", [T(14, asym=True)]),
    ("A1B+A2C", [T(1, intensity="B", asym=True), T(2, intensity="C", asym=True)]),
    ("A14C", [T(14, intensity="C", asym=True)]),
    ("R12", [T(12, "R")]),
    ("L10", [T(10, "L")]),
    ("B4", [T(4, "B")]),
    ("T18+39", [T(18, "T"), T(39)]),
    ("12L", [T(12, "L")]),
    ("4R+7", [T(4, "R"), T(7)]),
    ("12LB", [T(12, "L", "B")]),
    ("R6A+R12", [T(6, "R", "A"), T(12, "R")]),
    ("10A/B", [T(10, intensity="A", alt=1), T(10, intensity="B", alt=1)]),
    ("A/L12", [T(12, asym=True, alt=1), T(12, "L", alt=1)]),
    ("12/15", [T(12, alt=1), T(15, alt=1)]),
    ("(R6 or R12)+R15", [T(6, "R", alt=1), T(12, "R", alt=1), T(15, "R")]),
    ("(R6 or R12) + R15", [T(6, "R", alt=1), T(12, "R", alt=1), T(15, "R")]),
    ("L12 or L14", [T(12, "L", alt=1), T(14, "L", alt=1)]),
    ("R14A or 17A or 24A", [T(14, "R", "A", alt=1), T(17, intensity="A", alt=1), T(24, intensity="A", alt=1)]),
    ("4+R12 or L12", [T(4), T(12, "R", alt=1), T(12, "L", alt=1)]),
    ("(R6 or R12)+(L2 or R2)", [T(6, "R", alt=1), T(12, "R", alt=1), T(2, "L", alt=2), T(2, "R", alt=2)]),
    ("ref(7B)+43", [T(7, intensity="B", ref=True), T(43)]),
    ("7B+ ref(43)", [T(7, intensity="B"), T(43, ref=True)]),
    ("ref(L10)+A12B", [T(10, "L", ref=True), T(12, intensity="B", asym=True)]),
    ("L12 + 61", [T(12, "L"), T(61)]),
    ("12+15 ", [T(12), T(15)]),
    ("L10?", [T(10, "L", unc=True)]),
    ("AU 4", [T(4)]),
]


@pytest.mark.parametrize("text,want", FORMS)
def test_every_notation(text, want):
    toks = parse_au_tokens(text)
    assert fields(toks) == want
    assert all(t.raw for t in toks)
    assert parse_au_tokens(format_aus(toks)) == toks, "the canonical text parses back to the same tokens"


def test_free_text_is_kept_not_fatal():
    v, toks = parse_aus("R14+17+soft focus")
    assert np.array_equal(v, vec(14, 17))
    assert fields(toks[:2]) == [T(14, "R"), T(17)]
    assert toks[2].au is None and toks[2].raw == "soft focus"
    assert format_aus(toks) == "R14+17+soft focus"
    for text in ("12+smile", "x9", "(R6 or smile)", "ref(soft)"):
        _, toks = parse_aus(text)
        assert any(t.au is None for t in toks), text
    with pytest.raises(AUParseError, match="smile"):
        parse_aus("12+smile", strict=True)


def test_details_kept():
    _, toks = parse_aus("R12+4?+L14+AU43")
    assert [(t.au, t.side, t.uncertain) for t in toks] == [
        (12, "R", False),
        (4, "", True),
        (14, "L", False),
        (43, "", False),
    ]
    v, _ = parse_aus("AU43")  # outside the 21-AU list: kept in tokens, not in the vector
    assert v.sum() == 0


def test_mirror():
    assert mirror_aus("R12+L14+4") == "L12+R14+4"
    assert mirror_aus("(R6 or L12)+4L+soft focus") == "(L6 or R12)+R4+soft focus"
    assert mirror_aus("B28+T18") == "B28+T18"


def test_the_authors_au_list_reads_the_same_cell_over_their_aus():
    from mepipe.aus import AU_LISTS, parse_aus

    assert len(AU_LISTS["authors"]) == len(AU_LISTS["mepipe"]) == 21
    assert set(AU_LISTS["mepipe"]) - set(AU_LISTS["authors"]) == {11, 13}
    assert set(AU_LISTS["authors"]) - set(AU_LISTS["mepipe"]) == {28, 45}
    cell = "R12+11+45+4?"
    mine, _ = parse_aus(cell)
    theirs, _ = parse_aus(cell, au_list=AU_LISTS["authors"])
    on = lambda vec, lst: sorted(au for au, bit in zip(lst, vec) if bit)  # noqa: E731
    assert on(mine, AU_LISTS["mepipe"]) == [4, 11, 12] and on(theirs, AU_LISTS["authors"]) == [4, 12, 45]
