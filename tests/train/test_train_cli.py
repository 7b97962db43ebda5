"""`mepipe train` argument parsing and exit codes; cheap import."""

import argparse
import json
import subprocess
import sys

import pytest

from mepipe.train.cli import register


def _parser():
    p = argparse.ArgumentParser(prog="mepipe")
    register(p.add_subparsers(dest="command"))
    return p


def test_cli_trains_and_prints_the_table(pattern_cache, tmp_path, capsys):
    out = tmp_path / "cli"
    args = _parser().parse_args(
        [
            "train",
            str(pattern_cache),
            "--model",
            "ahmsa-net",
            "--protocol",
            "holdout",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--lr",
            "0.001",
            "--device",
            "cpu",
            "--seed",
            "3",
            "--out",
            str(out),
            "--model-kwargs",
            '{"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}',
            "--label-map",
            '{"classes": ["neg", "other"], "map": {"negative": "neg", "positive": "other", "surprise": ""}}',
            "--class-weighting",
            "balanced",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "UF1" in printed and "excluded by the label map: 8" in printed
    d = json.loads((out / "results.json").read_text())
    assert d["config"]["seed"] == 3 and d["config"]["class_weighting"] == "balanced"
    assert d["labels"]["classes"] == ["neg", "other"] and d["labels"]["excluded"] == {"synth/surprise": 8}


def test_cli_errors_exit_2(tmp_path, capsys):
    args = _parser().parse_args(
        ["train", str(tmp_path / "none.h5"), "--model", "ahmsa-net", "--quiet", "--out", str(tmp_path / "o")]
    )
    assert args.func(args) == 2
    assert "cache not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "x.h5", "--model", "m", "--select", "best"])


def test_folds_argument():
    args = _parser().parse_args(["train", "x.h5", "--model", "m", "--folds", "0-2,5"])
    assert args.folds == [0, 1, 2, 5]


def test_import_is_cheap():
    code = "import sys, mepipe.train, mepipe.train.cli, mepipe.train.metrics; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
