"""AU strings from every dataset's notation to the one 21-AU vector."""
import numpy as np
import pytest

from mepipe.aus import AU_LIST, AUParseError, mirror_aus, parse_aus


def vec(*aus):
    v = np.zeros(len(AU_LIST), np.uint8)
    for a in aus:
        v[AU_LIST.index(a)] = 1
    return v


@pytest.mark.parametrize("text,aus", [
    ("4+7", (4, 7)), ("AU4+AU7", (4, 7)), ("R12", (12,)), ("L14+AU1", (14, 1)), ("12?", (12,)),
    ("1,2", (1, 2)), (12.0, (12,)), ("", ()), ("/", ()), (float("nan"), ()), ("12B+4C", (12, 4)),
])
def test_vector(text, aus):
    v, _ = parse_aus(text)
    assert np.array_equal(v, vec(*aus))


def test_details_kept():
    _, toks = parse_aus("R12+4?+L14+AU43")
    assert [(t.au, t.side, t.uncertain) for t in toks] == [(12, "R", False), (4, "", True), (14, "L", False), (43, "", False)]
    v, _ = parse_aus("AU43")  # outside the 21-AU list: kept in tokens, not in the vector
    assert v.sum() == 0


def test_mirror_and_errors():
    assert mirror_aus("R12+L14+4") == "L12+R14+4"
    with pytest.raises(AUParseError, match="smile"):
        parse_aus("12+smile")
