"""Fail fast, lose nothing, leak nothing (issue "Fail fast"): one test per row of the matrix in
docs/scaling.md, "Bad input".

- a config mistake costs one line and exit 2, and writes nothing;
- ``--overwrite`` replaces a cache only once the new run has committed;
- a cache file is untrusted: links, virtual or external storage, unknown objects, unknown schema
  versions and disagreeing row counts are refused; NaN/inf is listed by ``inspect`` and refused
  by ``train`` (unless ``--drop-nonfinite``);
- one writer per cache; no worker outlives a killed client.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mepipe.cache import CacheError, CacheWriter, open_cache, record_from_sample
from mepipe.cli import main
from mepipe.sample import Sample


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def _one_line_error(rc, err, *words):
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]


# ----------------------------------------------------------------------------- recipes


BAD_RECIPES = {
    "misspelt_section": ("[flwo]\nengine = 'numba'\n", ["unknown section [flwo]", "did you mean 'flow'"]),
    "misspelt_key": ("[flow]\nengnie = 'numba'\n", ["unknown key 'engnie' in [flow]", "did you mean 'engine'"]),
    "text_for_a_number": ("[align]\nsize = 'big'\n", ["[align] size must be an integer, got 'big'"]),
    "out_of_range": ("[flow]\nnscales = -1\n", ["[flow] nscales must be >= 1"]),
    "unknown_compression": ("[cache]\ncompression = 'zstd'\n", ["[cache] compression = 'zstd' is not one of"]),
    "commit_every_text": ("[cache]\ncommit_every = 'x'\n", ["[cache] commit_every must be an integer"]),
    "unknown_engine": ("[flow]\nengine = 'foo'\n", ["[flow] engine = 'foo' is not one of"]),
    "unknown_layout": ("[compose]\nlayout = 'grid'\n", ["[compose] layout = 'grid' is not one of"]),
    "unknown_dataset_option": (
        "[dataset]\nname = 'casme2'\nframez = 'raw'\n",
        ["unknown key 'framez' in [dataset]", "did you mean 'frames'"],
    ),
}


@pytest.fixture(scope="module")
def manifest(synth_set):
    return synth_set


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_recipe_is_one_line_and_writes_nothing(case, manifest, tmp_path):
    text, words = BAD_RECIPES[case]
    recipe = tmp_path / f"{case}.toml"
    recipe.write_text(text, encoding="utf-8")
    out = tmp_path / "c.h5"
    rc, so, se = _cli("preprocess", "--manifest", manifest, "--out", out, "--recipe", recipe, "--quiet")
    _one_line_error(rc, se, str(recipe), *words)
    assert not list(tmp_path.glob("c.h5*")), list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flag,value,words",
    [("--flow-engine", "foo", "[flow] engine = 'foo'"), ("--flow-preset", "nope", "[flow] preset = 'nope'")],
)
def test_bad_flow_options_are_refused_before_work(flag, value, words, manifest, tmp_path):
    rc, so, se = _cli("preprocess", "--manifest", manifest, "--out", tmp_path / "c.h5", flag, value, "--quiet")
    _one_line_error(rc, se, words)
    assert not list(tmp_path.glob("c.h5*"))


def test_default_recipe_lists_exactly_the_schema_defaults():
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    from importlib import resources

    from mepipe.recipe_schema import SECTIONS, section_defaults

    raw = tomllib.loads((resources.files("mepipe.pipelines") / "default.toml").read_text(encoding="utf-8"))
    for sec in ("frames", "crop", "align", "flow", "strain", "compose", "cache"):
        assert raw[sec] == section_defaults(sec), sec
    assert set(raw) - {"name"} <= set(SECTIONS)


def test_every_bundled_recipe_passes_the_schema():
    from mepipe.recipe import available_recipes, load_recipe
    from mepipe.runner import build_stages

    for name in available_recipes():
        build_stages(load_recipe(name))  # every stage accepts it


def test_a_setting_no_engine_accepts_is_refused_before_work(manifest, tmp_path):
    recipe = tmp_path / "gamma.toml"
    recipe.write_text("[flow]\nengine = 'numba'\ngamma = 0.5\n", encoding="utf-8")
    rc, so, se = _cli("preprocess", "--manifest", manifest, "--out", tmp_path / "c.h5", "--recipe", recipe, "--quiet")
    _one_line_error(rc, se, "[flow]", "gamma")
    assert not list(tmp_path.glob("c.h5*"))


# ----------------------------------------------------------------------------- overwrite, one writer


@pytest.fixture(scope="module")
def good_cache(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "good.h5"
    rc, so, se = _cli("preprocess", "--manifest", manifest, "--out", out, "--quiet")
    assert rc == 0, se
    return out


def test_overwrite_with_a_typo_keeps_the_good_cache(good_cache, manifest, tmp_path):
    before = good_cache.read_bytes()
    rc, so, se = _cli(
        "preprocess", "--manifest", manifest, "--out", good_cache, "--overwrite", "--flow-engine", "numbaa", "--quiet"
    )
    _one_line_error(rc, se, "did you mean 'numba'")
    assert good_cache.read_bytes() == before


def _records(n, start=0):
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        s = Sample("ds", "s1", f"e{i}", "/x", 0, 1)
        out.append(
            record_from_sample(s, {"flow": rng.normal(size=(2, 4, 4)).astype(np.float32)}, np.zeros(21, np.uint8))
        )
    return out


def test_overwrite_replaces_the_cache_only_at_its_first_commit(tmp_path):
    path = tmp_path / "c.h5"
    w = CacheWriter(path, {"name": "a"}, "hash-a", commit_every=100)
    for r in _records(3):
        w.add(r)
    w.close()
    old = path.read_bytes()
    w = CacheWriter(path, {"name": "b"}, "hash-b", overwrite=True, commit_every=100)
    assert w.done_keys() == set()  # nothing of the old cache is resumed
    w.add(_records(1, start=10)[0])
    assert path.read_bytes() == old  # spooled, not committed: the old cache is as it was
    w.commit()
    with open_cache(path) as c:
        assert list(c.meta["key"]) == ["ds/s1/e10"] and c.attrs["recipe_hash"] == "hash-b"
    w.close()
    assert not w.replaced_spool_dir.exists()


def test_one_writer_per_cache(tmp_path):
    path = tmp_path / "c.h5"
    first = CacheWriter(path, {"name": "a"}, "h")
    with pytest.raises(CacheError, match=rf"being written by another mepipe process \(pid {os.getpid()}\)"):
        CacheWriter(path, {"name": "a"}, "h")
    first.close()
    CacheWriter(path, {"name": "a"}, "h").close()  # free again once the first writer closed


@pytest.mark.slow
def test_a_second_preprocess_on_one_out_exits_2_naming_the_first(manifest, tmp_path):
    out = tmp_path / "busy.h5"
    cmd = [sys.executable, "-m", "mepipe.cli", "preprocess", "--manifest", str(manifest), "--out", str(out), "--quiet"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = Path(str(out) + ".lock")
        t0 = time.time()
        while not lock.exists() and time.time() - t0 < 60:
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"(pid {first.pid})" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0
    with open_cache(out) as c:
        assert len(c) == 8


# ----------------------------------------------------------------------------- untrusted caches


def _craft(tmp_path, name, edit):
    """A valid small cache, then ``edit(h5py.File)`` on it."""
    path = tmp_path / f"{name}.h5"
    w = CacheWriter(path, {"name": "x"}, "h", commit_every=100)
    for r in _records(3):
        w.add(r)
    w.close()
    with h5py.File(path, "a") as f:
        edit(f, tmp_path)
    return path


def _external_link(f, tmp):
    other = tmp / "other.h5"
    with h5py.File(other, "w") as g:
        g["secret"] = np.array([b"hostname"] * 3, dtype=object)
    del f["meta/emotion"]
    f["meta/emotion"] = h5py.ExternalLink(str(other), "/secret")


def _virtual(f, tmp):
    other = tmp / "vsrc.h5"
    with h5py.File(other, "w") as g:
        g["x"] = np.arange(3)
    layout = h5py.VirtualLayout(shape=(3,), dtype=np.int64)
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(3,))
    del f["meta/onset"]
    f.create_virtual_dataset("meta/onset", layout)


def _external_storage(f, tmp):
    raw = tmp / "raw.bin"
    raw.write_bytes(np.arange(3, dtype=np.int64).tobytes())
    del f["meta/onset"]
    f.create_dataset("meta/onset", shape=(3,), dtype=np.int64, external=[(str(raw), 0, 24)])


def _soft_link(f, tmp):
    del f["meta/subject"]
    f["meta/subject"] = h5py.SoftLink("/meta/key")


def _extra_group(f, tmp):
    f.create_group("payload")


def _extra_field(f, tmp):
    f["data/exploit"] = np.zeros((3, 2), np.float32)


def _fractional_version(f, tmp):
    f.attrs["schema_version"] = 1.7


def _short_rows(f, tmp):
    d = f["data/flow"][:2]
    del f["data/flow"]
    f["data/flow"] = d


def _object_dtype(f, tmp):
    del f["meta/onset"]
    f.create_dataset("meta/onset", data=np.zeros(3, dtype=[("a", "i4"), ("b", "f4")]))


CRAFTED = {
    "external_link": (_external_link, "external link"),
    "virtual_dataset": (_virtual, "virtual dataset"),
    "external_storage": (_external_storage, "external files"),
    "soft_link": (_soft_link, "soft link"),
    "extra_group": (_extra_group, "unexpected object(s) /payload"),
    "extra_field": (_extra_field, "unexpected field /data/exploit"),
    "fractional_schema_version": (_fractional_version, "schema_version 1.7 is not an integer"),
    "short_data_rows": (_short_rows, "/data/flow has float32(2, 2, 4, 4)"),
    "compound_dtype": (_object_dtype, "/meta/onset has dtype"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_cache_is_refused_naming_the_object(case, tmp_path):
    edit, words = CRAFTED[case]
    path = _craft(tmp_path, case, edit)
    with pytest.raises(CacheError, match=None) as e:
        open_cache(path)
    assert words in str(e.value) and str(path) in str(e.value)
    rc, so, se = _cli("inspect", path)
    _one_line_error(rc, se, words)
    from mepipe.train import run

    with pytest.raises(CacheError):
        run([path], "ahmsa-net", out=tmp_path / "r", epochs=1, progress=False)
    with pytest.raises(CacheError):  # nor is it resumed into
        CacheWriter(path, {"name": "x"}, "h")


@pytest.mark.slow
def test_nan_is_listed_by_inspect_and_refused_by_train(tmp_path):
    import tests.train.conftest as tc

    path = tc.make_cache(tmp_path / "nan.h5", "synth", ["s1", "s2", "s3"], ["a", "b"], per_class=1)
    with h5py.File(path, "a") as f:
        a = f["data/ahmsa"][1]
        a[0, 3, 3] = np.nan
        f["data/ahmsa"][1] = a
        key = f["meta/key"][1].decode()
    rc, so, se = _cli("inspect", path)
    assert rc == 0 and "samples with NaN or inf: 1" in so and f"{key}: ahmsa" in so
    tiny = (
        "--model",
        "ahmsa-net",
        "--epochs",
        "1",
        "--quiet",
        "--model-kwargs",
        '{"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}',
    )
    rc, so, se = _cli("train", path, *tiny, "--out", tmp_path / "r")
    _one_line_error(rc, se, "NaN or inf", key, "--drop-nonfinite")
    rc, so, se = _cli("train", path, *tiny, "--out", tmp_path / "r2", "--drop-nonfinite")
    assert rc == 0, se
    import json

    d = json.loads((tmp_path / "r2" / "results.json").read_text())
    assert d["config"]["dropped_nonfinite"] == [key] and d["metrics"]["n"] == 5


def test_bit_rotted_cache_in_inspect_is_one_line(tmp_path):
    path = _craft(tmp_path, "rot", lambda f, t: None)
    with h5py.File(path, "r") as f:
        info = f["data/flow"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset - 4096 : info.byte_offset + info.size] = b"\xff" * (info.size + 4096)
    path.write_bytes(bytes(raw))
    rc, so, se = _cli("inspect", path)
    assert "Traceback" not in se
    if rc != 0:  # the damage was found: one line naming the file
        _one_line_error(rc, se, str(path))


def test_a_spooled_record_hdf5_cannot_store_does_not_block_the_commit(tmp_path):
    path = tmp_path / "c.h5"
    w = CacheWriter(path, {"name": "a"}, "h", commit_every=100)
    good, bad = _records(2)
    bad.meta["emotion"] = "ha\x00ppy"
    w.add(good)
    w.add(bad)
    w.close()  # the good one is committed, the bad one becomes a failure
    with open_cache(path) as c:
        assert list(c.meta["key"]) == [good.key]
        f = c.failures.set_index("key")
        assert f.loc[bad.key, "stage"] == "write" and "NUL byte" in f.loc[bad.key, "reason"]
    assert not w.spool.keys()  # nothing is left waiting


# ----------------------------------------------------------------------------- arguments and paths


ARGS = [
    (["preprocess", "--manifest", "{m}", "--out", "{o}", "--limit", "-3"], "--limit: must be an integer >= 1"),
    (["preprocess", "--manifest", "{m}", "--out", "{o}", "--limit", "0"], "--limit: must be an integer >= 1"),
    (["preprocess", "--manifest", "{m}", "--out", "{o}", "--jobs", "0"], "--jobs: must be >= 1, or -1"),
    (["preprocess", "--manifest", "{m}", "--out", "{o}", "--jobs", "-2"], "--jobs: must be >= 1, or -1"),
    (["preprocess", "--manifest", "{m}", "--dataset", "casme2", "--out", "{o}"], "not allowed with argument"),
    (["preprocess", "--manifest", "{m}", "--out", "{m}", "--overwrite"], "is the --manifest file of this run"),
    (["preprocess", "--manifest", "{m}", "--out", "{d}", "--overwrite"], "is not a file"),
    (["train", "{o}", "--model", "ahmsa-net", "--lr", "inf"], "--lr: must be a finite number > 0"),
    (["train", "{o}", "--model", "ahmsa-net", "--lr", "0"], "--lr: must be a finite number > 0"),
    (["train", "{o}", "--model", "ahmsa-net", "--weight-decay", "-5"], "--weight-decay: must be a finite number >= 0"),
    (["train", "{o}", "--model", "ahmsa-net", "--folds", "5-2"], "'5-2' is not an ascending range"),
    (["train", "{o}", "--model", "ahmsa-net", "--folds", ","], "no index"),
    (["train", "{o}", "--model", "ahmsa-net", "--out", "{m}"], "is a file"),
    (["train", "{o}", "--model", "ahmsa-net", "--jobs", "0"], "--jobs: must be >= 1, or -1"),
    (["inspect", "{o}", "-n", "-3"], "-n: must be an integer >= 1"),
]


@pytest.mark.parametrize("argv,words", ARGS, ids=[" ".join(a[0:1] + a[-2:]) for a, _ in ARGS])
def test_arguments_are_checked_up_front(argv, words, manifest, good_cache, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    argv = [a.format(m=manifest, o=good_cache, d=d) for a in argv]
    before = manifest.read_bytes()
    rc, so, se = _cli(*argv)
    _one_line_error(rc, se, words)
    assert manifest.read_bytes() == before


def test_jobs_minus_one_means_every_core():
    from mepipe.parallel import cpu_count, resolve_jobs

    assert resolve_jobs(-1) == cpu_count() >= 1


# ----------------------------------------------------------------------------- no orphans


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_a_jobs_2_client_leaves_no_worker(sig, tmp_path):
    from mepipe.synth import make_synthetic_set

    m = make_synthetic_set(tmp_path / "set", subjects=4, samples_per_subject=8, seed=9, size=160, progress=False)
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mepipe.cli",
            "preprocess",
            "--manifest",
            str(m),
            "--out",
            str(tmp_path / "k.h5"),
            "--jobs",
            "2",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.time()
    kids: list[int] = []
    while time.time() - t0 < 60 and len(kids) < 2:
        kids = _children(client.pid)
        time.sleep(0.1)
    assert len(kids) >= 2, "the workers never started"
    spool = tmp_path / "k.h5.spool"
    from mepipe.cache.spool import Spool

    while time.time() - t0 < 120 and not (spool.is_dir() and Spool(tmp_path / "k.h5").keys()):
        time.sleep(0.1)  # a first sample finished: the workers are busy with the others
    kids = _children(client.pid)
    client.send_signal(sig)
    client.wait(timeout=60)
    t0 = time.time()
    while time.time() - t0 < 15 and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)], f"workers still alive after the client died: {kids}"
    if sig == signal.SIGTERM:
        assert client.returncode == 130  # ended like Ctrl-C: finished samples committed
        with open_cache(tmp_path / "k.h5") as c:
            assert len(c) >= 1


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_ctrl_c_on_a_jobs_2_run_commits_and_ends_its_workers_quietly(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the client commits what finished
    (exit 130), the forked workers end without a traceback each, and none is left."""
    from mepipe.cache.spool import Spool
    from mepipe.synth import make_synthetic_set

    m = make_synthetic_set(tmp_path / "set", subjects=4, samples_per_subject=8, seed=9, size=160, progress=False)
    out = tmp_path / "c.h5"
    client = subprocess.Popen(
        [sys.executable, "-m", "mepipe.cli", "preprocess", "--manifest", str(m), "--out", str(out), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    t0 = time.time()
    while (
        time.time() - t0 < 120
        and client.poll() is None
        and not ((tmp_path / "c.h5.spool").is_dir() and Spool(out).keys())
    ):
        time.sleep(0.05)
    kids = _children(client.pid)
    assert client.poll() is None and kids, "the run ended before it could be interrupted"
    os.killpg(client.pid, signal.SIGINT)
    so, se = client.communicate(timeout=60)
    assert client.returncode == 130, se
    assert "Traceback" not in se and "KeyboardInterrupt" not in se, se
    t0 = time.time()
    while time.time() - t0 < 15 and any(_alive(k) for k in kids):
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)]
    done = int(re.search(r"(\d+) done", so).group(1))
    with open_cache(out) as c:
        assert len(c) == done >= 1


def test_an_interrupt_right_after_a_sample_is_spooled_still_counts_it(synth_set, tmp_path, monkeypatch):
    """Ctrl-C between a sample's spooling and its count (a race the jobs-2 Ctrl-C test hit): the
    summary's "done" is what the cache holds of this run's samples, not what was counted."""
    from mepipe.datasets import read_manifest
    from mepipe.recipe import load_recipe
    from mepipe.runner import preprocess

    samples, _ = read_manifest(synth_set, dataset="synth")
    real_add = CacheWriter.add
    calls = []

    def add_then_interrupt(self, rec):
        real_add(self, rec)
        calls.append(rec.key)
        if len(calls) == 2:
            raise KeyboardInterrupt  # after the spool has it, before the runner counts it

    monkeypatch.setattr(CacheWriter, "add", add_then_interrupt)
    out = tmp_path / "c.h5"
    summary = preprocess(samples[:4], out, load_recipe(), jobs=1, progress=False)
    assert summary.interrupted
    with open_cache(out) as c:
        assert sorted(c.meta["key"]) == sorted(calls)
    assert summary.done == len(calls) == 2
