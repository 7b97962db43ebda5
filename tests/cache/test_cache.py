"""The HDF5 cache: bit-exact round trip, plain-h5py layout, resume, refusals, cheap import."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mepipe.cache import SCHEMA_VERSION, CacheError, CacheWriter, open_cache, record_from_sample
from mepipe.sample import Sample

RECIPE = {"name": "t", "flow": {"engine": "opencv"}}
ANNOTATIONS = [{"dataset": "ds", "file": "sheet.xlsx", "sha256": "ab" * 32, "sheet": "s1"}]


def _records(n, seed=0, start=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        s = Sample(
            "ds",
            f"sub{i % 3}",
            f"ep{i:02d}",
            "/data/x",
            1,
            5,
            9,
            emotion=["happy", "sad"][i % 2],
            label=i % 2,
            aus="R12+4?",
            frame_numbers=(11, 15, 19),
            extra={"note": f"n{i}"},
        )
        fields = {
            "onset": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
            "apex": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
            "flow": rng.normal(size=(2, 16, 16)).astype(np.float32),
            "strain": rng.random((16, 16), dtype=np.float32),
        }
        aus = np.zeros(21, np.uint8)
        aus[[2, 9]] = 1
        out.append(record_from_sample(s, fields, aus, n_frames=20))
    return out


def _write(path, recs, **kw):
    w = CacheWriter(path, RECIPE, "hash1", annotations=ANNOTATIONS, commit_every=kw.pop("commit_every", 2), **kw)
    for r in recs:
        w.add(r)
    w.close()
    return w


def test_round_trip_bit_exact(tmp_path):
    recs = _records(5)
    _write(tmp_path / "c.h5", recs)
    with open_cache(tmp_path / "c.h5") as c:
        assert len(c) == 5 and c.emotions == ["happy", "sad"] and c.recipe == RECIPE and c.annotations == ANNOTATIONS
        assert sorted(c.fields) == ["apex", "flow", "onset", "strain"]
        for r in recs:
            got = c.read(c.index_of(r.key))
            for k, v in r.fields.items():
                assert got[k].dtype == v.dtype and np.array_equal(got[k], v)
            assert np.array_equal(got["aus"], r.aus) and got["emotion"] == r.meta["emotion"]
        row = c.meta.set_index("key").loc["ds/sub1/ep01"]
        assert (row.onset_frame, row.apex_frame, row.emotion, row.aus_text) == (11, 15, "sad", "R12+4?")
        assert json.loads(row.extra) == {"note": "n1"}
    # readable with plain h5py, no mepipe needed; one sample per chunk
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["data/flow"].shape == (5, 2, 16, 16) and f["data/flow"].chunks == (1, 2, 16, 16)
        keys = [k.decode() for k in f["meta/key"][:]]
        i = keys.index(recs[3].key)
        assert np.array_equal(f["data/flow"][i], recs[3].fields["flow"])
        assert list(f["meta/aus"].attrs["au_list"][:3]) == [1, 2, 4]
        for name, ds in f["data"].items():
            assert ds.dtype.kind in "uif", name  # numbers only: nothing to unpickle


@pytest.mark.parametrize("compression", ["none", "gzip", "lzf"])
def test_compression_round_trip_and_hash(tmp_path, compression):
    """Every compression reads back bit-exact with plain h5py, and is a storage choice: it does not
    change the recipe hash (a cache resumed with another compression keeps its datasets' own)."""
    from mepipe.recipe import recipe_hash

    recs = _records(3)
    _write(tmp_path / "c.h5", recs, compression=compression)
    with h5py.File(tmp_path / "c.h5", "r") as f:
        for name in ("flow", "onset"):
            assert f[f"data/{name}"].compression == (None if compression == "none" else compression)
        keys = [k.decode() for k in f["meta/key"][:]]
        for r in recs:
            for k, v in r.fields.items():
                assert np.array_equal(f[f"data/{k}"][keys.index(r.key)], v)
    a = {"flow": {"engine": "numba"}, "cache": {"compression": "gzip", "compression_opts": 4}}
    b = {"flow": {"engine": "numba"}, "cache": {"compression": compression}}
    assert recipe_hash(a) == recipe_hash(b)
    assert recipe_hash(a) != recipe_hash({"flow": {"engine": "opencv"}, "cache": {"compression": "gzip"}})


def test_resume_skips_and_spool_recovers(tmp_path):
    path = tmp_path / "c.h5"
    _write(path, _records(3))
    w = CacheWriter(path, RECIPE, "hash1", annotations=ANNOTATIONS)
    assert w.done_keys() == {r.key for r in _records(3)}
    # a run killed after spooling two samples but before committing them
    for r in _records(2, seed=1, start=3):
        w.spool.put(r)
    del w
    with open_cache(path) as c:
        assert len(c) == 3  # the cache file itself is untouched
    w2 = CacheWriter(path, RECIPE, "hash1", annotations=ANNOTATIONS)
    assert len(w2.done_keys()) == 5  # spooled samples are not recomputed
    w2.close()
    with open_cache(path) as c:
        assert len(c) == 5 and len(set(c.meta.key)) == 5
        assert np.array_equal(
            c.read(c.index_of("ds/sub0/ep03"))["flow"], _records(2, seed=1, start=3)[0].fields["flow"]
        )
    assert not (tmp_path / "c.h5.spool").exists()


def test_adding_twice_keeps_one(tmp_path):
    recs = _records(2)
    _write(tmp_path / "c.h5", recs + recs)
    assert len(open_cache(tmp_path / "c.h5")) == 2


def test_failures_table_latest_state(tmp_path):
    path = tmp_path / "c.h5"
    w = CacheWriter(path, RECIPE, "hash1")
    w.fail("ds/sub0/ep00", "crop", "no face")
    w.fail("ds/sub9/ep99", "frames", "missing folder /x")
    w.close()
    w = CacheWriter(path, RECIPE, "hash1")
    w.add(_records(1)[0])  # ep00 now succeeds: no longer a failure
    w.close()
    with open_cache(path) as c:
        assert c.failures.to_dict("records") == [
            {"key": "ds/sub9/ep99", "stage": "frames", "reason": "missing folder /x"}
        ]


def test_other_recipe_refused_unless_overwrite(tmp_path):
    path = tmp_path / "c.h5"
    _write(path, _records(2))
    with pytest.raises(CacheError, match="another recipe"):
        CacheWriter(path, RECIPE, "hash2")
    CacheWriter(path, RECIPE, "hash2", overwrite=True).close()
    assert not path.exists() or len(open_cache(path)) == 0


def test_newer_schema_and_damaged_files(tmp_path):
    path = tmp_path / "c.h5"
    _write(path, _records(2))
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(CacheError, match="newer than this mepipe"):
        open_cache(path)
    with pytest.raises(CacheError, match="newer than this mepipe"):
        CacheWriter(path, RECIPE, "hash1")
    data = path.read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError, match="truncated or corrupt"):
        open_cache(tmp_path / "t.h5")
    with pytest.raises(CacheError, match="not found"):
        open_cache(tmp_path / "none.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(CacheError, match="not a mepipe cache"):
        open_cache(tmp_path / "other.h5")


def test_torch_dataset(tmp_path):
    import torch

    recs = _records(4)
    _write(tmp_path / "c.h5", recs)
    c = open_cache(tmp_path / "c.h5")
    ds = c.torch_dataset(["onset", "flow", "strain", "aus", "aus_mask"], target_transform=lambda y: y + 10)
    assert ds.classes == ["happy", "sad"]  # native: the cache's emotions, chosen when the dataset is made
    x, y = ds[1]
    i = c.index_of(ds.meta.key.iloc[1])
    assert x["onset"].shape == (3, 16, 16) and x["strain"].shape == (1, 16, 16) and x["aus"].shape == (21,)
    assert x["aus_mask"].tolist() == [1.0]
    assert torch.allclose(x["onset"], torch.from_numpy(c.read(i)["onset"]).permute(2, 0, 1).float() / 255)
    assert y == ds.classes.index(c.read(i)["emotion"]) + 10
    from mepipe.aus import AU_LISTS, parse_aus

    authors = c.torch_dataset(["aus"], au_list="authors")  # the same cell read over the authors' AUs
    want = parse_aus("R12+4?", au_list=AU_LISTS["authors"])[0]
    assert authors[0][0]["aus"].numpy().astype(np.uint8).tolist() == want.tolist()
    two = c.torch_dataset(["flow"], label_map={"classes": ["sad"], "map": {}})  # another label map, no rebuild
    assert len(two) == 2 and {two[j][1] for j in range(2)} == {0}
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)  # worker processes open their own handles
    assert sum(len(b[1]) for b in batches) == 4
    with pytest.raises(CacheError, match="no field"):
        c.torch_dataset(["ahmsa"])


def test_import_is_cheap():
    code = (
        "import sys, mepipe; c = mepipe.open_cache; import mepipe.cache; "
        "print(sorted(m for m in ('cv2','dlib','mediapipe','torch','numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_commit_batches_grow_with_the_cache(tmp_path, monkeypatch):
    """A commit copies the whole file: with ``commit_growth`` the bytes copied stay a small multiple
    of the final file (fixed batches copy it over and over), and the cache holds the same samples."""
    import shutil

    import mepipe.cache.writer as mc

    real = shutil.copyfile
    recs = _records(120)
    copied, commits, final = {}, {}, {}
    for growth in (0.0, 0.5):
        sizes = []
        monkeypatch.setattr(
            mc.shutil, "copyfile", lambda a, b, _s=sizes: (_s.append(os.path.getsize(a)), real(a, b))[1]
        )
        path = tmp_path / f"g{growth}.h5"
        w = CacheWriter(path, RECIPE, "hash1", commit_every=2, commit_growth=growth)
        for r in recs:
            w.add(r)
        w.close()
        copied[growth], commits[growth], final[growth] = sum(sizes), len(sizes), os.path.getsize(path)
    assert commits[0.0] == 59  # 60 batches of 2; the first creates the file, no copy
    assert commits[0.5] <= 12, commits
    assert copied[0.5] < 4 * final[0.5], (copied, final)  # about final / growth, plus small-file overhead
    assert copied[0.0] > 10 * final[0.0], (copied, final)
    with open_cache(tmp_path / "g0.0.h5") as a, open_cache(tmp_path / "g0.5.h5") as b:
        assert sorted(a.meta["key"]) == sorted(b.meta["key"])
        for key in a.meta["key"]:
            ra, rb = a.read(a.index_of(key)), b.read(b.index_of(key))
            assert all(np.array_equal(ra[k], rb[k]) for k in ("onset", "apex", "flow", "strain"))
    with pytest.raises(ValueError, match="commit_growth"):
        CacheWriter(tmp_path / "x.h5", RECIPE, "hash1", commit_growth=-1)


def test_spool_log_survives_a_kill_mid_record(tmp_path):
    """A process killed while appending leaves a partial last record: it is dropped, the records
    before it are read back bit for bit; a record whose bytes changed fails its CRC."""
    from mepipe.cache.spool import Spool

    path = tmp_path / "c.h5"
    sp = Spool(path)
    recs = _records(3)
    for r in recs:
        sp.put(r)
    sp.put_failure("ds/x/y", "crop", "no face")
    sp.close()
    (log,) = sp.logs()
    whole = log.read_bytes()
    for cut, n_samples, n_fails in ((len(whole) - 1, 3, 0), (len(whole) // 2, 1, 0), (len(whole), 3, 1)):
        log.write_bytes(whole[:cut])
        got = list(Spool(path).records())
        assert (len(got), len(list(Spool(path).failures()))) == (n_samples, n_fails)
        for g, r in zip(got, recs):
            assert g.key == r.key and g.meta == r.meta and np.array_equal(g.aus, r.aus)
            assert all(np.array_equal(g.fields[k], v) and g.fields[k].dtype == v.dtype for k, v in r.fields.items())
    assert [f["stage"] for f in Spool(path).failures()] == ["crop"]
    first = Spool(path).index()[0]
    flipped = bytearray(whole)
    flipped[first.offset + 28 + first.hlen + first.plen // 2] ^= 0xFF  # inside the first record's arrays
    log.write_bytes(bytes(flipped))
    assert len(list(Spool(path).records())) == 2 and len(Spool(path).keys()) == 3  # headers fine, one payload not
