"""The SOA experiment under control: ``synth --axis`` plants motion along an axis, ``bench soa``
trains the full ``facesleuth-soa`` on it and reports the learned angles."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from mepipe.angles import axis_distance
from mepipe.synth import AXIS_CLASSES, axis_band_field, axis_pairs, make_synthetic_set

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("axis", [90.0, 60.0, 0.0, 135.0])
def test_axis_band_moves_along_its_axis_and_codes_the_class_by_position_along_it(axis):
    size, rng = 64, np.random.default_rng(0)
    th = math.radians(axis)
    d = np.array([math.cos(th), math.sin(th)])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    t = (xx - (size - 1) / 2) * d[0] + (yy - (size - 1) / 2) * d[1]
    centres = []
    for k in range(3):
        f = axis_band_field((size, size), axis, k, 3, 1.5, rng, jitter=0.0)
        mag = np.hypot(f[0], f[1])
        assert mag.max() == pytest.approx(1.5, rel=0.05)
        # every displacement points along d
        cross = f[0] * d[1] - f[1] * d[0]
        assert np.abs(cross).max() < 1e-5 and (f[0] * d[0] + f[1] * d[1]).min() > -1e-6
        # the field depends on t = p·d only: constant along the lines orthogonal to d
        s = (xx - (size - 1) / 2) * -d[1] + (yy - (size - 1) / 2) * d[0]
        near = np.abs(s) < 20
        pred = 1.5 * np.exp(-0.5 * ((t - (k - 1) * 0.2 * size) / (0.05 * size)) ** 2)
        assert np.abs(mag[near] - pred[near]).max() < 1e-4
        centres.append(float((mag * t).sum() / mag.sum()))
    assert centres[0] < centres[1] < centres[2]
    assert centres[1] == pytest.approx(0.0, abs=0.5) and centres[2] - centres[1] == pytest.approx(0.2 * size, rel=0.05)


@pytest.mark.slow
def test_axis_pairs_differ_only_in_the_planted_motion():
    d = axis_pairs(60.0, subjects=2, samples_per_subject=6, size=48, seed=1, noise=0.0)
    assert d["onset"].shape == d["apex"].shape == (12, 3, 48, 48) and d["onset"].dtype == np.float32
    assert sorted(set(d["y"].tolist())) == [0, 1, 2] and (d["aus"] == 0).all() and (d["aus_mask"] == 1).all()
    # the onsets of one subject are one face, whatever the class; only the apex moved
    s1 = d["subject"] == "s01"
    assert np.allclose(d["onset"][s1], d["onset"][s1][0])
    assert np.abs(d["apex"] - d["onset"]).max() > 0.02


def test_synth_axis_writes_band_classes_without_au_cues(tmp_path):
    manifest = make_synthetic_set(
        tmp_path / "ax",
        subjects=1,
        samples_per_subject=3,
        frames_per_sample=3,
        size=96,
        seed=2,
        progress=False,
        axis=30.0,
    )
    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    assert sorted(r["emotion"] for r in rows) == sorted(AXIS_CLASSES) and all(r["aus"] == "" for r in rows)
    info = json.loads((tmp_path / "ax" / "synth.json").read_text())
    assert info["axis_deg"] == 30.0
    for r in rows:
        gt = np.load(tmp_path / "ax" / r["path"] / "gt_flow.npy")
        big = np.hypot(gt[0], gt[1]) > 0.1
        ang = np.degrees(np.arctan2(gt[1][big], gt[0][big]))
        assert np.all([axis_distance(a, 30.0) < 1.0 for a in ang[:: max(1, len(ang) // 50)]])


def test_bench_soa_is_a_bench_subcommand_and_checks_its_options(tmp_path, capsys):
    from mepipe.benchmarks import SUBCOMMANDS
    from mepipe.cli import main

    assert "soa" in SUBCOMMANDS
    rc = main(["bench", "soa", "--targets", "90", "--size", "40", "--out", str(tmp_path / "o")])
    assert rc == 2 and "multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_short_bench_soa_run_moves_theta_toward_the_planted_axis(tmp_path):
    """From the default 45°, the deepest SOA layer turns toward 90° when the motion is planted along
    90° and toward 0° when it is planted along 0°: the angle follows the data, not a drift."""
    from mepipe.benchmarks.soa import bench_soa

    res = bench_soa(
        targets=[90.0, 0.0],
        epochs=10,
        batch_size=10,
        theta_lr=0.02,
        samples=60,
        subjects=3,
        size=64,
        out=tmp_path,
        progress=False,
    )
    assert (tmp_path / "soa.json").is_file() and (tmp_path / "soa.png").is_file()
    saved = json.loads((tmp_path / "soa.json").read_text())
    assert saved["differs_from_defaults"]["theta_lr"] == {"used": 0.02, "default": 0.005}
    for r in res["runs"]:
        assert r["init_deg"] == 45.0
        assert {"target_deg", "init_deg", "seed", "final_deg", "final_deg_layers"} <= set(r)
        last = r["angle_per_epoch_deg"]["layer 4"]
        print(r["target_deg"], r["final_deg_layers"])
        assert axis_distance(last[-1], r["target_deg"]) < axis_distance(last[0], r["target_deg"]) - 10.0


def test_angle_scan_averages_seeds_per_frozen_angle_and_names_the_lowest_loss():
    from mepipe.benchmarks.soa import angle_scan

    runs = [
        {"target_deg": 30.0, "init_deg": 0.0, "heldout_loss": 0.9, "heldout_accuracy": 0.6},
        {"target_deg": 30.0, "init_deg": 0.0, "heldout_loss": 0.7, "heldout_accuracy": 0.8},
        {"target_deg": 30.0, "init_deg": 150.0, "heldout_loss": 0.5, "heldout_accuracy": 0.9},
        {"target_deg": 90.0, "init_deg": 90.0, "heldout_loss": 0.4, "heldout_accuracy": 0.85},
    ]
    scan = angle_scan(runs)
    assert set(scan) == {"30", "90"}
    rows = {r["angle_deg"]: r for r in scan["30"]["angles"]}
    assert rows[0.0]["heldout_loss"] == pytest.approx(0.8) and rows[0.0]["heldout_accuracy"] == pytest.approx(0.7)
    assert rows[0.0]["seeds"] == 2 and rows[150.0]["seeds"] == 1
    assert rows[0.0]["distance_deg"] == 30.0 and rows[150.0]["distance_deg"] == 60.0  # axes: 150° is 60° from 30°
    assert scan["30"]["best_angle_deg"] == 150.0 and scan["30"]["best_distance_deg"] == 60.0
    assert scan["90"]["best_distance_deg"] == 0.0


@pytest.mark.slow
def test_frozen_scan_keeps_each_angle_and_writes_the_scan(tmp_path):
    from mepipe.benchmarks.soa import bench_soa

    res = bench_soa(
        targets=[90.0],
        inits=[0.0, 60.0],
        model="facesleuth-soa-frozen",
        epochs=1,
        batch_size=6,
        samples=12,
        heldout=24,
        subjects=2,
        size=32,
        out=tmp_path,
        progress=False,
    )
    for r in res["runs"]:
        assert r["final_deg_layers"] == [r["init_deg"]] * 4  # frozen: the angle never moves
        assert r["heldout_pairs"] == 24 and r["heldout_loss"] > 0
    saved = json.loads((tmp_path / "soa.json").read_text())
    assert [a["angle_deg"] for a in saved["summary"]["scan"]["90"]["angles"]] == [0.0, 60.0]
    assert (tmp_path / "soa.png").stat().st_size > 1000
