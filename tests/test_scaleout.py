"""Scale-out: per-sample work on a dask cluster (or ray) gives the same cache as a local run, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from mepipe.cache import open_cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mepipe.datasets import read_manifest
    from mepipe.labels import apply_label_map
    from mepipe.recipe import load_recipe
    from mepipe.runner import preprocess
    from mepipe.synth import make_synthetic_set

    root = tmp_path_factory.mktemp("scale")
    manifest = make_synthetic_set(root / "set", subjects=2, samples_per_subject=2, seed=21, size=96,
                                  frames_per_sample=3, progress=False)
    samples, failures = read_manifest(manifest, dataset="scale")
    classes, samples = apply_label_map(samples, "native")
    recipe = load_recipe("default")
    local = root / "local.h5"
    s = preprocess(samples, local, recipe, jobs=1, classes=classes, progress=False)
    assert s.done == len(samples) and not s.failed, s.text()
    return root, samples, classes, recipe, local


def _assert_same(a, b):
    with open_cache(a) as ca, open_cache(b) as cb:
        assert sorted(ca.meta["key"]) == sorted(cb.meta["key"])
        assert ca.fields == cb.fields and ca.classes == cb.classes
        assert ca.attrs["recipe_hash"] == cb.attrs["recipe_hash"]
        for key in ca.meta["key"]:
            ra, rb = ca.read(ca.index_of(key)), cb.read(cb.index_of(key))
            for name in ca.fields:
                assert ra[name].dtype == rb[name].dtype and np.array_equal(ra[name], rb[name]), f"{key} {name}"
            assert ra["label"] == rb["label"] and np.array_equal(ra["aus"], rb["aus"])


def test_dask_local_cluster_equals_local_run(tiny):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    out = root / "dask.h5"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        s = preprocess(samples, out, recipe, jobs=2, backend="dask", scheduler=cluster.scheduler_address,
                       classes=classes, progress=True)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out)


def test_ray_equals_local_run(tiny):
    pytest.importorskip("ray", reason="ray is not installed (an optional extra: pip install 'mepipe[ray]')")
    from mepipe.runner import preprocess

    root, samples, classes, recipe, local = tiny
    out = root / "ray.h5"
    s = preprocess(samples, out, recipe, jobs=2, backend="ray", classes=classes, progress=False)
    assert s.done == len(samples) and not s.failed, s.text()
    _assert_same(local, out)


def test_unknown_backend_is_a_clear_error(tiny, tmp_path):
    from mepipe.runner import preprocess

    _, samples, classes, recipe, _ = tiny
    with pytest.raises(ValueError, match="unknown backend 'spark'"):
        preprocess(samples, tmp_path / "x.h5", recipe, jobs=2, backend="spark", classes=classes, progress=False)
