"""Shared annotation helpers: header found by content, columns by name, cell cleaning, csv."""

import pytest

from mepipe.datasets.cells import RowError, clean_cell, parse_frame_number
from mepipe.datasets.tables import read_table
from mepipe.errors import AnnotationError


def test_cells():
    assert clean_cell(46.0) == "46" and clean_cell(float("nan")) == "" and clean_cell(None) == ""
    assert clean_cell(" EP02_01f\u00a0") == "EP02_01f"
    assert parse_frame_number("46.0", "apex") == 46 and parse_frame_number(" 7 ", "apex") == 7
    assert parse_frame_number("/", "apex", required=False) is None
    assert parse_frame_number(-1, "apex", required=False, negative_is_missing=True) is None
    for bad, msg in (("46.5", "whole"), ("img46", "not a frame number"), (-3, "negative")):
        with pytest.raises(RowError, match=msg):
            parse_frame_number(bad, "apex frame")
    with pytest.raises(RowError, match="apex frame is empty") as e:
        parse_frame_number("", "apex frame")
    assert e.value.kind == "missing_value"


def test_csv_header_by_content_and_columns_by_name(tmp_path):
    p = tmp_path / "codes.csv"
    # columns in an unusual order, a title line and a blank line above the header; a footnote row
    p.write_text(
        "My copy of the coding sheet,,,\n,,,\nEmotion,Apex Frame,Filename,subject,Onset Frame\n"
        "happiness,5,EP01,1,3\n,,,,\nsurprise,/,EP02,2,4.0\n",
        encoding="utf-8",
    )
    spec = {
        "subject": ("Subject",),
        "filename": ("Filename",),
        "onset": ("Onset Frame",),
        "apex": ("Apex Frame",),
        "emotion": ("Estimated Emotion", "Emotion"),
    }
    t = read_table(p, spec, ("subject", "filename", "onset", "apex"))
    assert t.header_row == 3
    assert [(n, r["filename"], r["onset"], r["apex"], r["emotion"]) for n, r in t.rows] == [
        (4, "EP01", "3", "5", "happiness"),
        (6, "EP02", "4.0", "/", "surprise"),
    ]
    with pytest.raises(AnnotationError, match="lacks offset"):
        read_table(p, {**spec, "offset": ("Offset Frame",)}, ("subject", "filename", "offset"))


def test_names_from_sheets_cannot_leave_the_root(tmp_path):
    from mepipe.datasets.files import child_dir

    root = tmp_path / "root"
    (root / "sub01").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "sub01" / "EP_link").symlink_to(outside, target_is_directory=True)
    for name in ("..", "../elsewhere", "a/b", ""):
        with pytest.raises(RowError, match="not a plain folder name"):
            child_dir(root / "sub01", name, root, what="clip")
    with pytest.raises(RowError, match="outside the dataset root"):
        child_dir(root / "sub01", "EP_link", root, what="clip")
    assert child_dir(root, "SUB01", root, what="subject") == root / "sub01"  # case-insensitive match


def test_manifest_dispatch(tmp_path):
    from mepipe.datasets import list_datasets, load_dataset

    (tmp_path / "clip").mkdir()
    m = tmp_path / "mine.csv"
    m.write_text(
        "subject,sample_id,path,onset,apex,offset,emotion,aus\ns1,c1,clip,0,2,4,joy,12\ns1,c2,clip,3,1,4,joy,\n"
    )
    samples, failures = load_dataset("manifest", m)
    assert [s.key for s in samples] == ["mine/s1/c1"] and len(failures) == 1 and "row 3" in failures[0].reason
    assert [d.name for d in list_datasets()] == ["casme2", "samm", "smic", "casme3", "mmew", "manifest"]


def test_failure_kinds_named_in_the_adapters_exist():
    """Every kind a dataset module gives a RowError is one of FAILURE_KINDS (an unknown kind would
    be counted as "other")."""
    import ast
    from pathlib import Path

    import mepipe.datasets as pkg
    from mepipe.datasets.cells import FAILURE_KINDS

    used = set()
    for src in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "RowError" and len(node.args) > 1:
                used.add(node.args[1].value)
    assert len(used) >= 11 and used <= set(FAILURE_KINDS), used - set(FAILURE_KINDS)


def test_load_result_unpacks_pickles_and_copies(casme2_tree):
    import copy
    import pickle

    from mepipe.datasets import load_dataset

    result = load_dataset("casme2", casme2_tree["root"])
    samples, failures = result
    for other in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert [s.key for s in other.samples] == [s.key for s in samples]
        assert (other.source, other.rows, other.failure_kinds) == (result.source, result.rows, result.failure_kinds)
