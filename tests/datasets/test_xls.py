"""The .xls path (CASME2_label_Ver_2.xls is distributed as Excel 97): same samples as the .xlsx."""

import shutil

import pytest

from mepipe.datasets import load_dataset


def test_casme2_xls_reads_like_xlsx(casme2_tree, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    xlwt = pytest.importorskip("xlwt", reason="xlwt (a dev dependency) writes the .xls fixture")
    src = casme2_tree["annotation"]
    ws = openpyxl.load_workbook(src).active
    book = xlwt.Workbook()
    sheet = book.add_sheet("Sheet1")
    for r, row in enumerate(ws.iter_rows(values_only=True)):
        for c, v in enumerate(row):
            if v is not None:
                sheet.write(r, c, v)  # numbers become Excel floats, as in the real .xls
    xls = tmp_path / "CASME2_label_Ver_2.xls"
    book.save(str(xls))
    a_samples, a_fail = load_dataset("casme2", casme2_tree["root"], annotation=src)
    b_samples, b_fail = load_dataset("casme2", casme2_tree["root"], annotation=xls)

    def view(samples):
        return [
            (s.key, s.onset, s.apex, s.offset, s.emotion, s.aus, s.frame_numbers, s.apex_estimated) for s in samples
        ]

    assert view(b_samples) == view(a_samples) and len(a_samples) >= 5
    assert [(f.key, f.stage) for f in b_fail] == [(f.key, f.stage) for f in a_fail]
    # found by its usual name when no override is given
    root2 = tmp_path / "casme2"
    shutil.copytree(casme2_tree["root"], root2, ignore=shutil.ignore_patterns("*.xlsx"))
    shutil.copy(xls, root2 / xls.name)
    c_samples, _ = load_dataset("casme2", root2)
    assert [s.key for s in c_samples] == [s.key for s in a_samples]
