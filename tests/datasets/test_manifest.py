"""The generic CSV manifest: good rows parsed against the file, every bad row reported by number."""

import pytest

from mepipe.datasets import read_manifest
from mepipe.errors import AnnotationError

HEADER = "subject,sample_id,path,onset,apex,offset,emotion,aus\n"


def _manifest(tmp_path, rows, header=HEADER):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    p = tmp_path / "m.csv"
    p.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def test_good_rows(tmp_path):
    p = _manifest(tmp_path, ["s1,e1,clips/a,0,4,9,happiness,R12+6", "s1,e2,clips/a,2,3,,surprise,"])
    samples, failures = read_manifest(p)
    assert not failures
    a, b = samples
    assert (a.subject, a.sample_id, a.onset, a.apex, a.offset, a.emotion, a.aus) == (
        "s1",
        "e1",
        0,
        4,
        9,
        "happiness",
        "R12+6",
    )
    assert a.source == (tmp_path / "clips" / "a").resolve() and a.key == "m/s1/e1"
    assert b.offset is None and b.aus == ""


@pytest.mark.parametrize(
    "row,message",
    [
        (",e1,clips/a,0,4,9,x,", "subject is empty"),
        ("s1,,clips/a,0,4,9,x,", "sample_id is empty"),
        ("s1,e1,,0,4,9,x,", "path is empty"),
        ("s1,e1,clips/a,,4,9,x,", "onset is empty"),
        ("s1,e1,clips/a,zero,4,9,x,", "onset is not a number: 'zero'"),
        ("s1,e1,clips/a,0,nan,9,x,", "apex is not a number"),
        ("s1,e1,clips/a,0,4.5,9,x,", "not a whole frame index"),
        ("s1,e1,clips/a,-1,4,9,x,", "onset is negative"),
        ("s1,e1,clips/a,5,4,9,x,", "onset 5 is after apex 4"),
        ("s1,e1,clips/a,0,4,3,x,", "apex 4 is after offset 3"),
        ("s1,e1,../outside,0,4,9,x,", "outside the dataset root"),
    ],
)
def test_bad_row_reported_rest_kept(tmp_path, row, message):
    p = _manifest(tmp_path, ["s0,ok,clips/a,0,1,2,x,", row])
    samples, failures = read_manifest(p)
    assert [s.sample_id for s in samples] == ["ok"]
    (f,) = failures
    assert f.stage == "annotation" and "row 3" in f.reason and str(p) in f.reason and message in f.reason


def test_duplicate_ids(tmp_path):
    p = _manifest(tmp_path, ["s1,e1,clips/a,0,1,2,x,", "s1,e1,clips/a,0,1,2,x,"])
    samples, failures = read_manifest(p)
    assert len(samples) == 1 and "duplicate sample id (first at row 2)" in failures[0].reason


def test_outside_root_when_allowed(tmp_path):
    (tmp_path / "other").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    p = sub / "m.csv"
    p.write_text(HEADER + "s1,e1,../other,0,1,2,x,\n")
    samples, failures = read_manifest(p, allow_outside_root=True)
    assert samples and not failures


def test_unusable_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        read_manifest(tmp_path / "nope.csv")
    p = tmp_path / "m.csv"
    p.write_text("subject,path,onset\n")
    with pytest.raises(AnnotationError, match="lacks column"):
        read_manifest(p)
    p.write_bytes(HEADER.encode() + b"s1,e\xff,clips,0,1,2,x,\n")
    with pytest.raises(AnnotationError, match="not UTF-8"):
        read_manifest(p)


def test_au_text_kept_and_noted(tmp_path):
    """An AU cell never fails a row: what is not an AU stays in the text, the vector holds the rest."""
    from mepipe.aus import parse_aus

    p = _manifest(tmp_path, ["s1,e1,clips/a,0,4,9,x,12+smile"])
    (s,), failures = read_manifest(p)
    assert not failures and s.aus == "12+smile"
    assert s.notes == [("au_raw", "AU cell '12+smile': 'smile' is not an Action Unit, kept as text")]
    vec, toks = parse_aus(s.aus)
    assert vec.sum() == 1 and [t.raw for t in toks if t.au is None] == ["smile"]
