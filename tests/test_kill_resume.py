"""Crash safety, proven by killing it: SIGKILL at random moments and resume; SIGINT ends cleanly.

``mepipe preprocess`` runs as a subprocess on a tiny synthetic set (2 subjects x 3 samples, 96 px,
3 frames each) with ``[cache] commit_every = 1`` so that commits are frequent and a kill often lands
inside one. The final cache must equal an uninterrupted run's, key by key, bit for bit.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mepipe.cache import open_cache, spool_dir
from mepipe.cache.spool import Spool

pytestmark = pytest.mark.slow  # subprocesses, worker pools or whole runs

N_SAMPLES = 6
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mepipe.synth import make_synthetic_set

    root = tmp_path_factory.mktemp("kill")
    manifest = make_synthetic_set(
        root / "set", subjects=2, samples_per_subject=3, seed=11, size=96, frames_per_sample=3, progress=False
    )
    recipe = root / "commit1.toml"
    recipe.write_text('base = "default"\n[cache]\ncommit_every = 1\n', encoding="utf-8")
    return root, manifest, recipe


def _cmd(manifest, recipe, out):
    return [
        sys.executable,
        "-m",
        "mepipe.cli",
        "preprocess",
        "--manifest",
        str(manifest),
        "--recipe",
        str(recipe),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--quiet",
    ]


def _run(cmd, timeout=120):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    return p.returncode, p.stdout, p.stderr


def _consistent_count(path: Path) -> int | None:
    """Open ``path`` with plain h5py and check that no sample is half there; returns the sample count.

    None when the file does not exist yet. Every data field, every metadata column and the
    ``n_samples`` attribute must agree, and keys must be unique.
    """
    if not path.exists():
        return None
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        return None  # renamed away between exists() and open(): the next look sees the new file
    with f:
        n = f["meta/key"].shape[0]
        assert int(f.attrs["n_samples"]) == n
        for name in f["data"]:
            assert f["data"][name].shape[0] == n, f"field {name} has {f['data'][name].shape[0]} rows, keys {n}"
        for col in f["meta"]:
            assert f["meta"][col].shape[0] == n, f"meta column {col} has {f['meta'][col].shape[0]} rows, keys {n}"
        keys = [k.decode() for k in f["meta/key"][:]]
        assert len(set(keys)) == n, f"duplicate keys in {path}: {keys}"
    return n


def _arrays_by_key(path: Path) -> dict:
    with open_cache(path) as c:
        return {c.meta["key"][i]: c.read(i) for i in range(len(c))}


@pytest.fixture(scope="module")
def reference(tiny):
    """The uninterrupted run, through the same command in a fresh process like the runs it is
    compared with. (The numba flow engine agrees between fresh processes bit for bit, but in this
    long-lived test process it has been seen to differ by up to 3e-5 px: docs/performance.md.)"""
    root, manifest, recipe = tiny
    out = root / "reference.h5"
    rc, so, se = _run(_cmd(manifest, recipe, out))
    assert rc == 0, se
    assert f"{N_SAMPLES} done" in so
    return out


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tiny, reference):
    root, manifest, recipe = tiny
    out = root / "killed.h5"
    rng = random.Random(6)
    targets = sorted(rng.sample(range(1, N_SAMPLES), 3))  # kill once the cache holds this many samples...
    kills_mid_run = 0
    reads = 0
    for target in targets:
        extra = rng.uniform(0.0, 0.35)  # ...plus a random delay, so kills land in spooling, commits, stages
        proc = subprocess.Popen(
            _cmd(manifest, recipe, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
        )
        try:
            t_end = time.monotonic() + 90
            while proc.poll() is None and time.monotonic() < t_end:
                n = _consistent_count(out)  # a reader racing the writer never sees a half-written sample
                reads += n is not None
                if n is not None and n >= target:
                    break
                time.sleep(0.02)
            time.sleep(extra)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills_mid_run += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        n = _consistent_count(out)  # after every kill the file opens with plain h5py and is whole
        assert n is None or 0 <= n <= N_SAMPLES
    assert kills_mid_run >= 2, "the kills should land while preprocess is running"
    assert reads > 0
    rc, so, se = _run(_cmd(manifest, recipe, out))
    assert rc == 0, se
    m = re.search(r"(\d+) done, (\d+) skipped", so)
    assert m and int(m.group(1)) + int(m.group(2)) == N_SAMPLES, so
    assert int(m.group(2)) > 0, "the resume should skip the samples committed before the kills"
    assert _consistent_count(out) == N_SAMPLES
    ref = _arrays_by_key(reference)
    got = _arrays_by_key(out)
    assert sorted(got) == sorted(ref)
    for key, r in ref.items():
        g = got[key]
        assert sorted(g) == sorted(r)
        for name, arr in r.items():
            if isinstance(arr, np.ndarray):
                assert arr.dtype == g[name].dtype and np.array_equal(arr, g[name]), f"{key} {name} differs"
            else:
                assert arr == g[name]
    with open_cache(out) as c:
        assert len(c.failures) == 0
    assert not spool_dir(out).exists(), "a finished run leaves no spool behind"
    assert not list(root.glob("killed.h5.tmp-*"))


def test_sigint_commits_what_finished_and_says_how_far(tiny, reference):
    root, manifest, _ = tiny
    recipe = root / "commit32.toml"  # commit rarely: finished samples wait in the spool when SIGINT comes
    recipe.write_text('base = "default"\n[cache]\ncommit_every = 32\ncommit_seconds = 600.0\n', encoding="utf-8")
    out = root / "interrupted.h5"
    proc = subprocess.Popen(
        _cmd(manifest, recipe, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    spool = spool_dir(out)
    t_end = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < t_end:
        if spool.is_dir() and len(Spool(out).keys()) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "preprocess ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=60)
    assert proc.returncode == 130, se
    m = re.search(r"(\d+) done, 0 skipped .* of 6 samples", so)
    assert m, so
    done = int(m.group(1))
    assert 2 <= done < N_SAMPLES
    hm = re.search(r"interrupted: (\d+) of 6 samples handled; every finished sample is committed", so)
    assert hm and int(hm.group(1)) == done, so
    assert _consistent_count(out) == done  # everything finished is in the cache file...
    assert not spool.exists()  # ...and nothing is left waiting in the spool
    ref = _arrays_by_key(reference)
    for key, g in _arrays_by_key(out).items():
        for name, arr in ref[key].items():
            if isinstance(arr, np.ndarray):
                assert np.array_equal(arr, g[name]), f"{key} {name} differs"
