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
    code, text = _run(["--counts", "--dataset", "casme2", "--root", str(casme2_tree["root"]),
                       "--dataset", "samm", "--root", str(samm_tree["root"])])
    assert code == 0
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[2:]}
    assert rows[("casme2", "negative")] == ["88", "3"]
    assert rows[("samm", "negative")] == ["92", "3"]
    assert rows[("smic", "surprise")] == ["43", "-"]
    assert "total" in text and "442" in text
