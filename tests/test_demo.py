"""`mepipe demo` end to end, on a tiny setting (smoke test: outputs, not accuracy).

The demo's accuracy on its default setting is measured and recorded in docs/performance.md
("Demo training"); here only that every stage runs and leaves its files, and that the demo says
which settings differ from the models' defaults.
"""

from __future__ import annotations

import json

import pytest

from mepipe.cli import DEMO_SETTINGS, build_parser, main

pytestmark = pytest.mark.slow  # subprocesses, worker pools or whole runs

pytest.importorskip("torch")


def test_demo_tiny_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(
        [
            "demo",
            "--out",
            str(out),
            "--subjects",
            "2",
            "--samples-per-subject",
            "4",
            "--jobs",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--models",
            "facesleuth-cva",
            "ahmsa-net",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out

    assert (out / "synth" / "manifest.csv").is_file()
    assert (out / "synth.h5").is_file()
    from mepipe.cache import open_cache

    with open_cache(out / "synth.h5") as c:
        assert len(c) == 8  # 2 subjects x 4 samples, none failed
    sheet = out / "contact_sheet.png"
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for model in ("facesleuth-cva", "ahmsa-net"):
        run = out / "runs" / model
        res = json.loads((run / "results.json").read_text())
        assert res["config"]["model"] == model
        assert res["config"]["protocol"] == "loso" and res["config"]["n_folds"] == 2
        assert res["config"]["epochs"] == 1 and res["config"]["batch_size"] == 4
        assert res["metrics"]["n"] == 8 and res["complete"]
        assert (run / "confusion.png").is_file() and (run / "curves.png").is_file()
        # the printed table: one row per model with its plots
        row = next((ln for ln in printed.splitlines() if ln.startswith(model + " ")), None)
        assert row is not None, printed
        assert str(run / "confusion.png") in row
    # the FaceSleuth demo settings reached the model, and the demo printed how they differ from the defaults
    cva = json.loads((out / "runs" / "facesleuth-cva" / "results.json").read_text())["config"]
    assert cva["model_kwargs"] == DEMO_SETTINGS["facesleuth*"]["model_kwargs"]
    assert cva["augment"] == DEMO_SETTINGS["facesleuth*"]["augment"]
    assert "input_size 64 (default 128)" in printed
    assert "ahmsa-net: epochs 1 (default 800), batch_size 4 (default 256), lr 0.001 (default 5e-06)" in printed
    assert "UF1" in printed and "demo time:" in printed


def test_demo_defaults_and_refusals(tmp_path, capsys):
    args = build_parser().parse_args(["demo"])
    assert args.epochs is None and args.batch_size is None and not args.no_aus  # per-model DEMO_SETTINGS
    # --no-aus is for FaceSleuth only; the demo refuses before any slow work
    rc = main(["demo", "--out", str(tmp_path / "d"), "--no-aus", "--models", "ahmsa-net"])
    assert rc == 2
    assert "--no-aus applies to the FaceSleuth models only" in capsys.readouterr().err
    assert not (tmp_path / "d" / "synth").exists()
