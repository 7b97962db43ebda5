"""``mepipe bench pipeline`` on a tiny synthetic set: both pipelines run, and the naive reference's
flow points the same way as mepipe's OpenCV-engine flow and as the synthetic ground truth."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses, worker pools or whole runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from mepipe.cli import main

    out = tmp_path_factory.mktemp("bench_pipeline")
    rc = main(
        [
            "bench",
            "pipeline",
            "--samples",
            "4",
            "--jobs",
            "1",
            "--repeat",
            "1",
            "--size",
            "192",
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    return json.loads((out / "pipeline.json").read_text()), (out / "pipeline.md").read_text()


def test_both_pipelines_measured(tiny_run):
    res, md = tiny_run
    assert res["benchmark"] == "pipeline" and res["samples"] == 4
    for name in ("reference", "mepipe"):
        assert res[name]["done"] == 4, res[name]
        assert res[name]["samples_per_s"] > 0 and np.isfinite(res[name]["samples_per_s"])
    assert res["ratio"] == pytest.approx(res["mepipe"]["samples_per_s"] / res["reference"]["samples_per_s"])
    r = res["rounds"][0]
    assert r["reference"]["load_before"] >= 0 and r["mepipe"]["load_after"] >= 0  # the load is recorded
    assert "naive reference" in md and "× reference" in md


def test_stage_split_covers_every_stage(tiny_run):
    res, _ = tiny_run
    for name in ("numba/micro", "opencv/default"):
        s = res["split"][name]
        assert s["done"] == 4 and s["hooks_complete"], s["hook_problems"]
        st = s["stage_seconds"]
        for stage in ("frames", "crop (dlib)", "align: MediaPipe", "flow", "strain", "compose", "write: HDF5 commit"):
            assert st[stage] > 0, stage
        # exclusive times add up to the measured total (``other`` is the remainder, never negative)
        assert sum(st.values()) == pytest.approx(s["seconds"], rel=1e-6)
    assert res["flow_params"]["engine"] == "numba" and res["flow_params"]["warps"] == 1  # micro, not the recipe's 5


def test_reference_flow_agrees_in_direction_with_mepipe_opencv(tiny_run):
    """On samples where the reference's per-frame boxes coincide (so its crop adds no motion of its
    own), its flow, mapped back to frame pixels, points like mepipe's OpenCV-engine flow and like
    the synthetic ground truth over the moving region."""
    res, _ = tiny_run
    rows = [r for r in res["direction"]["samples"] if r["reference_same_box"]]
    assert rows, "the reference found a different box on onset and apex of every sample"
    for r in rows:
        assert r["moving_px"] > 50
        assert r["cos[reference,mepipe opencv/default]"] > 0.8, r
        assert r["cos_gt[reference]"] > 0.8 and r["cos_gt[mepipe opencv/default]"] > 0.8, r
        assert r["rel_epe[reference]"] < 1.0 and r["rel_epe[mepipe opencv/default]"] < 1.0, r  # better than zero flow


def test_direction_metric_detects_opposite_flow():
    """The cosine check is not vacuous: a reversed field scores -1, a rotated one 0."""
    from mepipe.benchmarks.pipeline import mean_cosine, to_frame_grid

    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 32, 32)).astype(np.float32)
    mask = np.ones((32, 32), bool)
    assert mean_cosine(f, f, mask) == pytest.approx(1.0)
    assert mean_cosine(f, -f, mask) == pytest.approx(-1.0)
    assert mean_cosine(f, np.stack([-f[1], f[0]]), mask) == pytest.approx(0.0, abs=1e-6)
    # a flow in a grid scaled by 2 about the origin maps back to half its length in frame pixels
    m = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    g, valid = to_frame_grid(np.ones((2, 64, 64), np.float32), m, (32, 32))
    assert valid[:31, :31].all() and np.allclose(g[:, valid], 0.5)


def test_kernels_are_compiled_before_any_timed_round(tiny_run, tmp_path, monkeypatch):
    """A first run after an install compiles numba's kernels once: the bench does that untimed,
    says so, and never for an engine without them."""
    from mepipe.benchmarks import pipeline as bp
    from mepipe.stages import flow_numba

    data, _ = tiny_run
    pre = data["kernels_precompiled"]  # compiled before the rounds in a fresh clone, cached later
    assert pre["needed"] is (pre["seconds"] > 0) and set(pre) == {"needed", "seconds"}
    assert flow_numba.kernels_cached() is True  # after the run they are in numba's cache either way
    assert bp.precompile_kernels(bp.mepipe_recipe("opencv", "default"), tmp_path / "a.h5")["needed"] is False
    calls = []
    monkeypatch.setattr(flow_numba, "kernels_cached", lambda: False)
    monkeypatch.setattr("mepipe.runner.warm_up", lambda recipe: calls.append(recipe["flow"]["engine"]))
    got = bp.precompile_kernels(bp.mepipe_recipe("numba", "micro"), tmp_path / "b.h5")
    assert got["needed"] is True and calls == ["numba"]
    md = bp.markdown({**data, "kernels_precompiled": {"needed": True, "seconds": 17.5}})
    assert "compiled once before the rounds (17.5 s, not timed)" in md
