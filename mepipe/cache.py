"""The HDF5 feature cache: writer (crash-safe, resumable) and reader (plain h5py, no heavy imports).

Layout (``docs/cache-format.md`` is the reference)::

    /                  attrs: schema_version, mepipe_version, recipe (JSON), recipe_hash,
                              versions (JSON), classes (JSON), fields (JSON), created, updated
    /data/<field>      one stacked dataset per field, (N, ...), one sample per chunk (compression: recipe [cache])
    /meta/<column>     one 1-D dataset per metadata column (strings are UTF-8), /meta/aus (N, 21)
    /failures/<column> key, stage, reason: samples that did not make it, and why

Crash safety: each finished sample is first written to a spool folder beside the cache
(``C.h5.spool/``, one ``.npz`` per sample, written to a temporary name and renamed). A commit copies
the cache file, appends the spooled samples to the copy, flushes it, and atomically renames it over
the cache, then deletes the spooled files it committed. The cache file is therefore always a
complete, closed HDF5 file: a run killed at any moment leaves every committed sample readable, and
the next run commits whatever was spooled before the kill. Readers never see a half-written sample.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_open, atomic_write_text, fsync_dir, fsync_file
from .errors import MepipeError
from .versions import library_versions

SCHEMA_VERSION = 1

#: metadata columns: name -> kind ("str" or "int")
META_COLUMNS = {
    "key": "str",
    "dataset": "str",
    "subject": "str",
    "sample_id": "str",
    "emotion": "str",
    "label": "int",
    "onset": "int",
    "apex": "int",
    "offset": "int",
    "onset_frame": "int",
    "apex_frame": "int",
    "offset_frame": "int",
    "apex_estimated": "int",
    "n_frames": "int",
    "source": "str",
    "aus_text": "str",
    "extra": "str",
}
FAILURE_COLUMNS = ("key", "stage", "reason")


class CacheError(MepipeError):
    """A cache file cannot be used (missing, truncated, other schema, other recipe)."""


# ----------------------------------------------------------------------------- helpers


def _h5py():
    import h5py

    return h5py


def _str_dtype():
    return _h5py().string_dtype("utf-8")


def safe_text(value) -> str:
    """``value`` as a string HDF5 can store as UTF-8: bytes of a non-UTF-8 file name become ``\\xNN``."""
    s = str(value)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:
        raw = s.encode("utf-8", "surrogateescape")  # a path read from a non-UTF-8 file system
    except UnicodeEncodeError:
        raw = s.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _decode(arr) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in arr]


def spool_dir(path: Path) -> Path:
    return Path(str(path) + ".spool")


def _spool_name(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- records


@dataclass
class SampleRecord:
    """One finished sample: its arrays (``fields``) and metadata (``meta``, keys of META_COLUMNS)."""

    key: str
    fields: dict  # field name -> np.ndarray
    meta: dict  # column -> str | int
    aus: np.ndarray  # uint8 (21,)


def record_from_sample(sample, fields: dict, aus_vec: np.ndarray, n_frames: int = -1) -> SampleRecord:
    """Build a SampleRecord from a :class:`mepipe.sample.Sample` and its computed arrays."""
    fn = tuple(sample.frame_numbers) + (None,) * (3 - len(sample.frame_numbers))
    meta = {
        "key": sample.key,
        "dataset": sample.dataset,
        "subject": sample.subject,
        "sample_id": sample.sample_id,
        "emotion": sample.emotion or "",
        "label": int(sample.label),
        "onset": int(sample.onset),
        "apex": int(sample.apex),
        "offset": -1 if sample.offset is None else int(sample.offset),
        "onset_frame": -1 if fn[0] is None else int(fn[0]),
        "apex_frame": -1 if fn[1] is None else int(fn[1]),
        "offset_frame": -1 if fn[2] is None else int(fn[2]),
        "apex_estimated": int(bool(sample.apex_estimated)),
        "n_frames": int(n_frames),
        "source": str(sample.source),
        "aus_text": sample.aus or "",
        "extra": json.dumps(sample.extra or {}, sort_keys=True, default=str),
    }
    return SampleRecord(sample.key, fields, meta, np.asarray(aus_vec, dtype=np.uint8))


# ----------------------------------------------------------------------------- spool


class Spool:
    """Per-sample files written atomically before they are committed into the cache."""

    def __init__(self, cache_path: Path):
        self.dir = spool_dir(Path(cache_path))

    def _ensure(self):
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, rec: SampleRecord) -> None:
        self._ensure()
        arrays = {f"field__{k}": np.asarray(v) for k, v in rec.fields.items()}
        arrays["aus"] = rec.aus
        arrays["meta"] = np.frombuffer(json.dumps(rec.meta).encode("utf-8"), dtype=np.uint8)
        try:
            with atomic_open(self.dir / f"{_spool_name(rec.key)}.npz") as fh:
                np.savez(fh, **arrays)
        except OSError as e:
            raise CacheError(f"cannot write the spool file of sample {rec.key} in {self.dir}: {e}") from e

    def put_failure(self, key: str, stage: str, reason: str) -> None:
        self._ensure()
        try:
            atomic_write_text(self.dir / f"{_spool_name(key)}.fail.json",
                              json.dumps({"key": key, "stage": stage, "reason": reason}))
        except OSError as e:
            raise CacheError(f"cannot write the spool record of failed sample {key} in {self.dir}: {e}") from e

    def _read(self, p: Path, arrays: bool):
        """``(meta, fields, aus)`` of one spool file (``fields``/``aus`` only when ``arrays``), or None
        for a file that cannot be read (a file renamed into place is whole; anything else is junk
        and is removed)."""
        try:
            with np.load(p, allow_pickle=False) as z:  # members load lazily: meta alone is cheap
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if not arrays:
                    return meta, None, None
                fields = {k[len("field__"):]: z[k] for k in z.files if k.startswith("field__")}
                return meta, fields, z["aus"]
        except Exception:
            p.unlink(missing_ok=True)
            return None

    def records(self):
        """Yield ``(path, SampleRecord)`` for every spooled sample (unreadable files are skipped)."""
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.npz")):
            got = self._read(p, arrays=True)
            if got is not None:
                meta, fields, aus = got
                yield p, SampleRecord(meta["key"], fields, meta, aus)

    def failures(self):
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.fail.json")):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except Exception:
                p.unlink(missing_ok=True)
                continue
            yield p, d

    def keys(self) -> set[str]:
        """Keys of the spooled samples, reading only each file's metadata (resume start-up)."""
        if not self.dir.is_dir():
            return set()
        metas = (self._read(p, arrays=False) for p in sorted(self.dir.glob("*.npz")))
        return {safe_text(m[0]["key"]) for m in metas if m is not None}

    def clear(self) -> None:
        if self.dir.is_dir():
            shutil.rmtree(self.dir)

    def cleanup_temp(self) -> None:
        if self.dir.is_dir():
            for p in self.dir.glob(".*.tmp"):
                p.unlink(missing_ok=True)
            try:
                self.dir.rmdir()  # only when empty
            except OSError:
                pass


# ----------------------------------------------------------------------------- writer


class CacheWriter:
    """Owns one cache file: validates it against the recipe, spools and commits samples.

    >>> w = CacheWriter("c.h5", recipe, recipe_hash, classes)   # doctest: +SKIP
    >>> w.done_keys()            # keys already in the cache or the spool (skipped on resume)
    >>> w.add(record); w.fail(key, stage, reason); w.commit(); w.close()
    """

    def __init__(self, path, recipe: dict, recipe_hash: str, classes=(), overwrite: bool = False,
                 compression: str | None = None, compression_opts: int | None = 4,
                 commit_every: int = 32, commit_seconds: float = 30.0, commit_growth: float = 0.25, timer=None):
        from .timing import NO_TIMER

        self.timer = timer or NO_TIMER
        self.path = Path(path)
        self.recipe = recipe
        self.recipe_hash = recipe_hash
        self.classes = list(classes)
        self.compression = None if compression in (None, "none") else compression
        self.compression_opts = compression_opts if self.compression == "gzip" else None
        self.commit_every = max(1, int(commit_every))
        self.commit_seconds = float(commit_seconds)
        if not commit_growth >= 0:
            raise ValueError(f"commit_growth must be >= 0, got {commit_growth!r}")
        self.commit_growth = float(commit_growth)
        self._n_cached = 0
        self.spool = Spool(self.path)
        self._pending = 0
        self._last_commit = time.monotonic()
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.exists():
            raise CacheError(f"output folder does not exist: {parent}")
        _check_writable(parent)
        for tmp in parent.glob(self.path.name + ".tmp-*"):
            tmp.unlink(missing_ok=True)  # a commit killed before its rename
        self.spool.cleanup_temp()
        if overwrite:
            self.path.unlink(missing_ok=True)
            self.spool.clear()
        if self.path.exists():
            self._check_existing()
        elif self.spool.dir.exists():
            self._check_spool_recipe()
        self._write_spool_stamp()

    # -- validation
    def _check_existing(self):
        h5py = _h5py()
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                self._n_cached = int(f["meta/key"].shape[0]) if "meta/key" in f else 0
        except OSError as e:
            raise CacheError(f"existing cache is not a readable HDF5 file: {self.path} ({e}); "
                             f"use --overwrite to start again") from None
        check_schema(attrs, self.path)
        old = str(attrs.get("recipe_hash", ""))
        if old != self.recipe_hash:
            raise CacheError(
                f"cache {self.path} was written with another recipe (hash {old}, now {self.recipe_hash}); "
                f"use --overwrite to recompute it, or another --out")
        old_classes = json.loads(attrs.get("classes", "[]"))
        if old_classes and self.classes and old_classes != self.classes:
            raise CacheError(f"cache {self.path} has classes {old_classes}, this run {self.classes}; use --overwrite")

    def _stamp_path(self):
        return self.spool.dir / "RECIPE_HASH"

    def _check_spool_recipe(self):
        stamp = self._stamp_path()
        if stamp.is_file() and stamp.read_text().strip() != self.recipe_hash:
            raise CacheError(f"spool {self.spool.dir} holds samples of another recipe; use --overwrite")

    def _write_spool_stamp(self):
        self.spool._ensure()
        self._stamp_path().write_text(self.recipe_hash)

    # -- state
    def cached_keys(self) -> set[str]:
        if not self.path.exists():
            return set()
        with _h5py().File(self.path, "r") as f:
            if "meta/key" not in f:
                return set()
            return set(_decode(f["meta/key"][:]))

    def done_keys(self) -> set[str]:
        return self.cached_keys() | self.spool.keys()

    # -- writing
    def add(self, rec: SampleRecord) -> None:
        self.spool.put(rec)
        self._pending += 1
        self._maybe_commit()

    def fail(self, key: str, stage: str, reason: str) -> None:
        self.spool.put_failure(key, stage, reason)
        self._pending += 1
        self._maybe_commit()

    def _maybe_commit(self):
        # A commit copies the whole file, so the batch grows with the cache (commit_growth x the
        # samples already in it): the copying stays proportional to the data, not quadratic in it.
        due = max(self.commit_every, int(self.commit_growth * self._n_cached))
        if self._pending >= due or time.monotonic() - self._last_commit > self.commit_seconds:
            self.commit()

    def commit(self) -> int:
        """Move every spooled sample and failure into the cache file atomically; returns how many samples."""
        with self.timer.stage("write: HDF5 commit"):
            return self._commit()

    def _commit(self) -> int:
        recs = sorted(self.spool.records(), key=lambda pr: pr[1].key)  # deterministic order
        fails = list(self.spool.failures())
        self._pending = 0
        self._last_commit = time.monotonic()
        if not recs and not fails and self.path.exists():
            return 0
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        try:
            if self.path.exists():
                shutil.copyfile(self.path, tmp)
            # HDF5 does not survive a failing write (it can crash the process when the file is
            # closed), so make sure first that the room the appended samples need is there
            _reserve(tmp, sum(p.stat().st_size + 65536 for p, _ in recs) + 65536 * len(fails) + (1 << 20))
            added = self._append(tmp, [r for _, r in recs], [d for _, d in fails])
            n_after = self._n_cached + added
            fsync_file(tmp)
            os.replace(tmp, self.path)
            self._n_cached = n_after
            fsync_dir(self.path.parent)
        except CacheError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as e:  # disk full, file size limit, I/O error: the cache file was not touched
            tmp.unlink(missing_ok=True)
            kept = f"; {len(recs)} finished sample(s) stay spooled in {self.spool.dir} and are committed by the next run"
            raise CacheError(f"cannot write cache {self.path} ({type(e).__name__}: {e}); the existing cache is "
                             f"unchanged{kept if recs else ''}") from e
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        for p, _ in recs:
            p.unlink(missing_ok=True)
        for p, _ in fails:
            p.unlink(missing_ok=True)
        return added

    def _create(self, f, first: SampleRecord | None):
        f.attrs["schema_version"] = SCHEMA_VERSION
        from . import __version__

        f.attrs["mepipe_version"] = __version__
        f.attrs["recipe"] = json.dumps(self.recipe, sort_keys=True, default=str)
        f.attrs["recipe_hash"] = self.recipe_hash
        f.attrs["versions"] = json.dumps(library_versions(), sort_keys=True)
        f.attrs["classes"] = json.dumps(self.classes)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["fields"] = json.dumps([])
        f.create_group("data")
        meta = f.create_group("meta")
        for col, kind in META_COLUMNS.items():
            dt = _str_dtype() if kind == "str" else np.int64
            meta.create_dataset(col, shape=(0,), maxshape=(None,), dtype=dt, chunks=(256,))
        from .aus import AU_LIST

        aus = meta.create_dataset("aus", shape=(0, len(AU_LIST)), maxshape=(None, len(AU_LIST)),
                                  dtype=np.uint8, chunks=(256, len(AU_LIST)))
        aus.attrs["au_list"] = np.asarray(AU_LIST, dtype=np.int64)
        fg = f.create_group("failures")
        for col in FAILURE_COLUMNS:
            fg.create_dataset(col, shape=(0,), maxshape=(None,), dtype=_str_dtype(), chunks=(256,))

    def _ensure_field(self, f, name: str, arr: np.ndarray):
        data = f["data"]
        if name in data:
            ds = data[name]
            if ds.shape[1:] != arr.shape or ds.dtype != arr.dtype:
                raise CacheError(f"field {name!r}: sample has {arr.dtype}{arr.shape}, cache has {ds.dtype}{ds.shape[1:]}")
            return ds
        n = f["meta/key"].shape[0]
        if n:
            raise CacheError(f"field {name!r} is new but the cache already holds {n} samples without it")
        ds = data.create_dataset(name, shape=(0,) + arr.shape, maxshape=(None,) + arr.shape, dtype=arr.dtype,
                                 chunks=(1,) + arr.shape, compression=self.compression,
                                 compression_opts=self.compression_opts, shuffle=self.compression is not None)
        fields = json.loads(f.attrs["fields"])
        f.attrs["fields"] = json.dumps(sorted(set(fields) | {name}))
        return ds

    def _append(self, path: Path, recs: list[SampleRecord], fails: list[dict]) -> int:
        h5py = _h5py()
        with h5py.File(path, "a") as f:
            if "meta" not in f:
                self._create(f, recs[0] if recs else None)
            existing = set(_decode(f["meta/key"][:]))
            new = []
            for r in recs:
                if safe_text(r.key) not in existing:
                    existing.add(safe_text(r.key))
                    new.append(r)
            n0 = f["meta/key"].shape[0]
            n1 = n0 + len(new)
            if new:
                names = sorted(new[0].fields)
                for r in new:
                    if sorted(r.fields) != names:
                        raise CacheError(f"sample {r.key} has fields {sorted(r.fields)}, expected {names}")
                for name in names:
                    ds = self._ensure_field(f, name, np.asarray(new[0].fields[name]))
                    ds.resize(n1, axis=0)
                    for i, r in enumerate(new):
                        ds[n0 + i] = np.asarray(r.fields[name], dtype=ds.dtype)
                for col, kind in META_COLUMNS.items():
                    ds = f["meta"][col]
                    ds.resize(n1, axis=0)
                    vals = [r.meta.get(col, "" if kind == "str" else -1) for r in new]
                    if kind == "str":
                        vals = [safe_text(v) for v in vals]
                    ds[n0:n1] = np.asarray(vals, dtype=object if kind == "str" else np.int64)
                aus = f["meta/aus"]
                aus.resize(n1, axis=0)
                aus[n0:n1] = np.stack([r.aus for r in new])
            # failures: latest reason per key; a key that is now cached is no longer failed
            fg = f["failures"]
            old = dict(zip(_decode(fg["key"][:]), zip(_decode(fg["stage"][:]), _decode(fg["reason"][:]))))
            for d in fails:
                old[safe_text(d["key"])] = (d["stage"], d["reason"])
            merged = {k: v for k, v in old.items() if k not in existing}
            for j, col in enumerate(FAILURE_COLUMNS):
                vals = list(merged) if col == "key" else [v[j - 1] for v in merged.values()]
                fg[col].resize(len(vals), axis=0)
                if vals:
                    fg[col][:] = np.asarray([safe_text(v) for v in vals], dtype=object)
            f.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            f.attrs["n_samples"] = n1
        return len(new)

    def close(self) -> None:
        self.commit()
        stamp = self._stamp_path()
        if not any(self.spool.dir.glob("*.npz")) and not any(self.spool.dir.glob("*.fail.json")):
            stamp.unlink(missing_ok=True)
            self.spool.cleanup_temp()


def _reserve(path: Path, nbytes: int) -> None:
    """Check that ``path`` can grow by ``nbytes`` (disk space, file size limit); raises OSError if not."""
    existed = path.exists()
    with open(path, "ab") as fh:
        size = fh.seek(0, os.SEEK_END)
        try:
            os.posix_fallocate(fh.fileno(), size, nbytes)
        finally:
            os.ftruncate(fh.fileno(), size)
    if not existed:
        path.unlink()


def _check_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``: permission bits alone do not tell (root, read-only mounts)."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".mepipe-write-test-", dir=folder)
    except OSError as e:
        raise CacheError(f"output folder is not writable: {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(name)


def check_schema(attrs: dict, path) -> None:
    v = attrs.get("schema_version")
    if v is None:
        raise CacheError(f"{path} is an HDF5 file but not a mepipe cache (no schema_version attribute)")
    v = int(v)
    if v > SCHEMA_VERSION:
        raise CacheError(f"cache {path} has schema version {v}, newer than this mepipe reads ({SCHEMA_VERSION}); "
                         f"upgrade mepipe")
    if v < SCHEMA_VERSION:
        raise CacheError(f"cache {path} has old schema version {v} (this mepipe writes {SCHEMA_VERSION}); "
                         f"re-run preprocess with --overwrite")


# ----------------------------------------------------------------------------- reader


class Cache:
    """Read-only view of a cache file. Cheap to open: imports h5py, numpy and pandas only.

    ``len(cache)``, ``cache.meta`` (DataFrame), ``cache.aus`` (N, 21), ``cache.failures``
    (DataFrame), ``cache.classes``, ``cache.attrs``, ``cache.recipe``, ``cache.fields``,
    ``cache.read(i)`` -> dict of numpy arrays, ``cache.torch_dataset(...)``.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise CacheError(f"cache not found: {self.path}")
        h5py = _h5py()
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise CacheError(f"not a readable HDF5 file (truncated or corrupt?): {self.path} ({e})") from None
        try:
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self._f.attrs.items()}
            check_schema(self.attrs, self.path)
            self._meta = None
            self.fields = json.loads(self.attrs.get("fields", "[]"))
            self.classes = json.loads(self.attrs.get("classes", "[]"))
            self.recipe = json.loads(self.attrs.get("recipe", "{}"))
            self._n = int(self._f["meta/key"].shape[0])
        except CacheError:
            self._f.close()
            raise
        except Exception as e:
            self._f.close()
            raise CacheError(f"cache {self.path} is damaged or incomplete: {e}") from None

    def __len__(self) -> int:
        return self._n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def __repr__(self):
        return f"Cache({str(self.path)!r}, n={self._n}, fields={self.fields})"

    @property
    def meta(self):
        """Metadata table (pandas DataFrame), one row per sample, in cache order."""
        if self._meta is None:
            import pandas as pd

            cols = {}
            for col, kind in META_COLUMNS.items():
                if col not in self._f["meta"]:
                    continue
                raw = self._f["meta"][col][:]
                cols[col] = _decode(raw) if kind == "str" else raw.astype(np.int64)
            self._meta = pd.DataFrame(cols)
        return self._meta

    @property
    def aus(self) -> np.ndarray:
        return self._f["meta/aus"][:]

    @property
    def au_list(self) -> list[int]:
        return [int(a) for a in self._f["meta/aus"].attrs["au_list"]]

    @property
    def failures(self):
        import pandas as pd

        g = self._f["failures"]
        return pd.DataFrame({c: _decode(g[c][:]) for c in FAILURE_COLUMNS})

    def index_of(self, key: str) -> int:
        idx = np.flatnonzero(self.meta["key"].to_numpy() == key)
        if not len(idx):
            raise KeyError(f"sample {key!r} is not in cache {self.path}")
        return int(idx[0])

    def read(self, i: int, fields=None) -> dict:
        """Arrays of sample ``i`` (negative indices allowed): every field plus ``aus`` and ``label``."""
        if not -self._n <= i < self._n:
            raise IndexError(f"sample index {i} out of range for cache of {self._n} samples")
        i = i % self._n
        names = self.fields if fields is None else list(fields)
        out = {}
        for name in names:
            if name == "aus":
                continue
            if name not in self._f["data"]:
                raise KeyError(f"field {name!r} is not in cache {self.path}; it has {', '.join(self.fields)}")
            out[name] = self._f["data"][name][i]
        out["aus"] = self._f["meta/aus"][i]
        out["label"] = int(self._f["meta/label"][i])
        out["key"] = _decode([self._f["meta/key"][i]])[0]
        return out

    def torch_dataset(self, fields=("flow",), **kwargs):
        from .torch_dataset import CacheDataset

        return CacheDataset(self.path, fields=fields, **kwargs)


def open_cache(path) -> Cache:
    """Open a mepipe HDF5 cache for reading (no dlib, mediapipe, OpenCV or torch imported)."""
    return Cache(path)
