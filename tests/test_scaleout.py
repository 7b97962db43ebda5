"""Scale-out: per-sample work on a dask cluster (or ray) gives the same cache as a local run, bit for bit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mepipe.cache import open_cache

pytestmark = pytest.mark.slow  # subprocesses, worker pools or whole runs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mepipe.datasets import read_manifest
    from mepipe.recipe import load_recipe
    from mepipe.synth import make_synthetic_set

    root = tmp_path_factory.mktemp("scale")
    manifest = make_synthetic_set(
        root / "set", subjects=2, samples_per_subject=2, seed=21, size=96, frames_per_sample=3, progress=False
    )
    samples, failures = read_manifest(manifest, dataset="scale")
    classes = None
    recipe = load_recipe("default")
    local = root / "local.h5"
    # the local run in a fresh process, like the workers (the numba flow engine agrees between
    # fresh processes bit for bit; in this long-lived test process it has been seen to differ by
    # up to 3e-5 px: docs/performance.md)
    code = (
        "import sys; from mepipe.datasets import read_manifest; "
        "from mepipe.recipe import load_recipe; from mepipe.runner import preprocess; "
        "s, _ = read_manifest(sys.argv[1], dataset='scale'); "
        "r = preprocess(s, sys.argv[2], load_recipe('default'), jobs=1, progress=False); "
        "sys.exit(0 if r.done == len(s) and not r.failed else 1)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(manifest), str(local)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    return root, samples, classes, recipe, local


def _assert_same(a, b, atol=0.0):
    """Same samples, metadata and arrays; ``atol`` > 0 lets float arrays differ by that much."""
    with open_cache(a) as ca, open_cache(b) as cb:
        assert sorted(ca.meta["key"]) == sorted(cb.meta["key"])
        assert ca.fields == cb.fields and ca.emotions == cb.emotions
        assert ca.attrs["recipe_hash"] == cb.attrs["recipe_hash"]
        for key in ca.meta["key"]:
            ra, rb = ca.read(ca.index_of(key)), cb.read(cb.index_of(key))

            def same(x, y):
                if x.dtype != y.dtype:
                    return False
                if atol and x.dtype.kind == "f":
                    return np.allclose(x, y, rtol=0, atol=atol)
                return np.array_equal(x, y)

            differ = {
                name: float(np.abs(ra[name].astype(np.float64) - rb[name]).max())
                for name in ca.fields
                if not same(ra[name], rb[name])
            }
            assert not differ, f"{key}: fields differ (max abs difference) {differ}"
            assert ra["emotion"] == rb["emotion"] and np.array_equal(ra["aus"], rb["aus"])


def test_dask_local_cluster_equals_local_run(tiny):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    out = root / "dask.h5"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        s = preprocess(samples, out, recipe, jobs=2, backend="dask", scheduler=cluster.scheduler_address, progress=True)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out)


def test_ray_equals_local_run(tiny):
    pytest.importorskip("ray", reason="ray is not installed (an optional extra: pip install 'mepipe[ray]')")
    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    out = root / "ray.h5"
    s = preprocess(samples, out, recipe, jobs=2, backend="ray", progress=False)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out)


def test_threading_backend_equals_local_run(tiny):
    """``--backend threading``: the threads share the stage objects but each has its own MediaPipe
    graph and dlib detector (a shared graph fails with "Packet timestamp mismatch"). The frames and
    transforms are identical; the flow-derived fields are compared to 1e-4 because this long-lived
    test process can differ from a fresh one by up to 3e-5 px (docs/performance.md)."""
    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    out = root / "threads.h5"
    s = preprocess(samples, out, recipe, jobs=2, backend="threading", progress=False)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out, atol=1e-4)
    with open_cache(local) as a, open_cache(out) as b:
        for key in a.meta["key"]:
            ra, rb = a.read(a.index_of(key)), b.read(b.index_of(key))
            assert all(np.array_equal(ra[k], rb[k]) for k in ("onset", "apex", "transform")), key


@pytest.mark.parametrize("backend", ["local", "loky"])
def test_local_backends_equal_the_local_run_after_an_in_process_run(backend, tiny):
    """``local`` forks its workers from this process once it has loaded the models (a MediaPipe
    graph made here before must not be used by them: they build their own); ``loky`` starts fresh
    workers and this process computes samples meanwhile. Every sample is computed and cached once."""
    import os

    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    first = preprocess(samples[:1], root / f"{backend}-warm.h5", recipe, jobs=1, progress=False)  # a graph here
    assert first.done == 1
    out = root / f"{backend}.h5"
    s = preprocess(samples, out, recipe, jobs=2, backend=backend, progress=False, overwrite=True)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out, atol=1e-4)
    workers = [w for w in s.workers if not w.get("parent")]
    assert all(w["pid"] != os.getpid() and w["ready_s"] >= 0 for w in workers)
    with open_cache(out) as c:
        assert c.meta["key"].is_unique and len(c) == len(samples)


def test_loky_small_set_is_done_by_the_client_while_workers_start(tiny):
    """With fewer samples than a worker's start-up is worth, the client computes them all (also
    those handed to workers still starting) and the run ends without waiting for the workers."""
    import warnings

    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "tasks were cancelled" warning reaches the user
        s = preprocess(samples, root / "small.h5", recipe, jobs=2, backend="loky", progress=False, overwrite=True)
    assert s.done == len(samples)
    _assert_same(local, root / "small.h5", atol=1e-4)


def test_unknown_backend_is_a_clear_error(tiny, tmp_path):
    from mepipe.parallel import BackendError
    from mepipe.runner import preprocess

    _, samples, classes, recipe, _ = tiny
    with pytest.raises(BackendError, match="unknown backend 'spark'"):
        preprocess(samples, tmp_path / "x.h5", recipe, jobs=2, backend="spark", progress=False)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.spool").exists()  # checked before any work


def test_local_backend_forks_warm_workers_in_a_fresh_process(tiny):
    """In a process that has not run MediaPipe itself, ``local`` loads the models once and forks
    its workers from it: they start warm (and give the same cache as a fresh local run)."""
    import json

    root, samples, classes, recipe, local = tiny
    manifest = root / "set" / "manifest.csv"
    out = root / "forked.h5"
    code = (
        "import json, sys; from mepipe.datasets import read_manifest; from mepipe.recipe import load_recipe; "
        "from mepipe.runner import preprocess; from mepipe.stages.align import graph_built; "
        "s, _ = read_manifest(sys.argv[1], dataset='scale'); "
        "r = preprocess(s, sys.argv[2], load_recipe('default'), jobs=2, progress=False); "
        "print(json.dumps({'done': r.done, 'workers': r.workers, 'client_graph': graph_built()}))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(manifest), str(out)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["done"] == len(samples) and res["client_graph"] is False  # MediaPipe ran in the workers only
    assert res["workers"] and all(w["started_warm"] for w in res["workers"])
    _assert_same(local, out)


@pytest.mark.parametrize("backend", ["local", "multiprocessing"])
def test_forked_workers_start_after_the_client_used_opencvs_threads(tiny, backend):
    """A client that ran OpenCV's thread pool (as ``mepipe demo`` does while it draws its set)
    forks workers that do not hang: the pool's idle threads wait on condition variables that a
    fork inherits without the threads (``cv2.setNumThreads`` in the child then blocked forever)."""
    root, samples, classes, recipe, local = tiny
    out = root / f"after-cv2-{backend}.h5"
    code = (
        "import sys, cv2, numpy as np; from mepipe.datasets import read_manifest; "
        "from mepipe.recipe import load_recipe; from mepipe.runner import preprocess; "
        "img = np.random.default_rng(0).random((1500, 1500)).astype(np.float32); "
        "cv2.remap(img, img * 1000, img * 1000, cv2.INTER_LINEAR); cv2.resize(img, (2500, 2500)); "
        "s, _ = read_manifest(sys.argv[1], dataset='scale'); "
        "r = preprocess(s, sys.argv[2], load_recipe('default'), jobs=2, backend=sys.argv[3], progress=False); "
        "print(r.done, cv2.getNumThreads())"
    )
    try:
        p = subprocess.run(
            [sys.executable, "-c", code, str(root / "set" / "manifest.csv"), str(out), backend],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"preprocess --backend {backend} hung after the client used OpenCV's threads")
    assert p.returncode == 0, p.stderr
    done, threads = p.stdout.split()[-2:]
    assert int(done) == len(samples)
    assert int(threads) > 1  # the client's own OpenCV threads are given back after the run
    _assert_same(local, out)
