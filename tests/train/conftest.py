"""Tiny caches for the training tests, written with the real CacheWriter.

Each sample's class is visible in every field (a class-specific motion pattern), so even a model
trained for two epochs separates the classes better than chance; the tests do not rely on that,
they check structure and equalities.
"""

from __future__ import annotations

import numpy as np
import pytest
from records import sample_meta

from mepipe.cache import CacheWriter, SampleRecord

S = 16  # side of onset/apex/flow/strain


def _sample_fields(cls: int, rng) -> dict:
    onset = rng.integers(60, 90, size=(S, S, 3)).astype(np.uint8)
    apex = onset.copy()
    flow = rng.normal(0, 0.05, size=(2, S, S)).astype(np.float32)
    r0 = 2 + 4 * cls
    apex[r0 : r0 + 4, 3:13] = 200
    flow[cls % 2, r0 : r0 + 4, 3:13] += 1.5 if cls < 2 else -1.5
    strain = np.hypot(flow[0], flow[1]).astype(np.float32)
    ahmsa = rng.normal(0, 0.05, size=(3, 28, 28)).astype(np.float32)
    ahmsa[cls % 3, 7 * cls : 7 * cls + 7, :] += 1.0
    return {"onset": onset, "apex": apex, "flow": flow, "strain": strain, "ahmsa": ahmsa}


def make_cache(path, dataset: str, subjects, emotions, per_class: int = 2, seed: int = 0, aus_known: bool = True):
    """A cache of ``len(subjects) * len(emotions) * per_class`` samples; emotion ``i`` draws pattern ``i``."""
    rng = np.random.default_rng(seed)
    w = CacheWriter(path, recipe={"test": True}, recipe_hash="test-recipe", commit_every=1000)
    for s in subjects:
        for ei, emo in enumerate(emotions):
            for k in range(per_class):
                sid = f"{s}_{emo}_{k}"
                key = f"{dataset}/{s}/{sid}"
                meta = sample_meta(dataset, s, sid, emo, aus_known)
                aus = np.zeros(21, dtype=np.uint8)
                aus[ei] = 1
                w.add(SampleRecord(key, _sample_fields(ei % 4, rng), meta, aus))
    w.close()
    return path


@pytest.fixture(scope="session")
def pattern_cache(tmp_path_factory):
    """One dataset, 4 subjects, 3 classes, 2 samples per class and subject (24 samples), each class a
    planted pattern in every field (not the pipeline-made ``synth_cache`` of tests/conftest.py)."""
    d = tmp_path_factory.mktemp("synth")
    return make_cache(d / "synth.h5", "synth", ["s1", "s2", "s3", "s4"], ["negative", "positive", "surprise"])


@pytest.fixture(scope="session")
def composite_caches(tmp_path_factory):
    """Two caches with native emotions (CASME II-like and SAMM-like) and the same subject ids."""
    d = tmp_path_factory.mktemp("composite")
    c2_emotions = ["disgust", "happiness", "surprise", "others"]
    samm_emotions = ["anger", "happiness", "surprise", "other"]
    a = make_cache(d / "casme2.h5", "casme2", ["s1", "s2", "s3"], c2_emotions, per_class=1, seed=1)
    b = make_cache(d / "samm.h5", "samm", ["s1", "s2"], samm_emotions, per_class=1, seed=2)
    return a, b


@pytest.fixture
def tiny_ahmsa():
    """AHMSA-Net kwargs for a model small enough to train in well under a second per epoch."""
    return {"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}


@pytest.fixture
def tiny_soa():
    """FaceSleuth-SOA kwargs for a tiny model at 16x16."""
    return {
        "input_size": 16,
        "width": 4,
        "embed_dim": 4,
        "depths": [1, 1, 1],
        "heads": [1, 1, 1],
        "window": 1,
        "hidden": 8,
    }


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads on a shared machine; one thread avoids oversubscription."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
