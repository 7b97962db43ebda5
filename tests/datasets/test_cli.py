"""``mepipe datasets``: listing, check (exit 1 with every problem row), composite counts."""

import io

from mepipe.datasets.cli import main


def _run(argv):
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_list():
    code, text = _run([])
    assert code == 0
    for name in ("casme2", "samm", "smic", "casme3", "mmew", "manifest"):
        assert f"\n{name}: " in "\n" + text
    assert "SAMM_Micro_FACS_Codes_v2.xlsx" in text and "apex_rule" in text


def test_check_reports_every_bad_row(casme2_tree, mmew_tree):
    code, text = _run(["check", "--dataset", "casme2", "--root", str(casme2_tree["root"])])
    bad = [r for r in casme2_tree["rows"] if r["ok"] is False]
    assert code == 1 and f"{len(bad)} problem row(s)" in text
    for r in bad:
        assert f"row {r['sheet_row']} " in text and r["reason"] in text
    code, text = _run(["check", "--dataset", "smic", "--root", str(casme2_tree["root"])])
    assert code == 2


def test_counts_beside_reference(casme2_tree, samm_tree):
    from mepipe.datasets import load_dataset

    code, text = _run(
        [
            "--counts",
            "--dataset",
            "casme2",
            "--root",
            str(casme2_tree["root"]),
            "--dataset",
            "samm",
            "--root",
            str(samm_tree["root"]),
        ]
    )
    assert code == 0
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[2:]}
    c2, _ = load_dataset("casme2", casme2_tree["root"])
    neg = [s for s in c2 if s.emotion in ("disgust", "repression")]
    kept = [s for s in neg if not s.apex_estimated and s.onset != s.apex]  # the composite's CASME II rule
    assert rows[("casme2", "negative")][:2] == ["88", str(len(kept))]
    assert rows[("samm", "negative")][:2] == ["92", "3"]
    assert rows[("smic", "surprise")][:2] == ["43", "0"] and "<-" in rows[("smic", "surprise")]
    assert "total" in text and "442" in text
    if len(kept) < len(neg):
        assert "left out by the rules: casme2: apex not annotated or equal to the onset" in text
