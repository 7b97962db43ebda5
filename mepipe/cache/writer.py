"""The cache writer: validates an existing cache against the recipe, spools finished samples and
commits them into the cache file by copy, append, fsync and atomic rename."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from ..atomic import fsync_dir, fsync_file
from ..versions import library_versions
from .lock import CacheLock
from .records import SampleRecord
from .schema import (
    FAILURE_COLUMNS,
    META_COLUMNS,
    SCHEMA_VERSION,
    CacheError,
    _decode,
    _h5py,
    _str_dtype,
    safe_text,
)
from .spool import Spool


def unstorable(rec: SampleRecord) -> str | None:
    """Why HDF5 cannot store ``rec`` (a NUL byte in a text column, a field that is not a numeric
    array), or ``None``."""
    for col, v in rec.meta.items():
        if isinstance(v, str) and "\x00" in v:
            return f"its {col} holds a NUL byte, which HDF5 strings cannot store"
    for name, a in rec.fields.items():
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            return f"field {name!r} is not a numeric array (dtype {a.dtype})"
    return None


class CacheWriter:
    """Owns one cache file: validates it against the recipe, spools and commits samples.

    >>> w = CacheWriter("c.h5", recipe, recipe_hash, annotations=[...])   # doctest: +SKIP
    >>> w.done_keys()            # keys already in the cache or the spool (skipped on resume)
    >>> w.add(record); w.fail(key, stage, reason); w.commit(); w.close()
    """

    def __init__(
        self,
        path,
        recipe: dict,
        recipe_hash: str,
        annotations=(),
        overwrite: bool = False,
        compression: str | None = None,
        compression_opts: int | None = 4,
        commit_every: int = 32,
        commit_seconds: float = 30.0,
        commit_growth: float = 0.25,
        timer=None,
    ):
        from ..timing import NO_TIMER

        self.timer = timer or NO_TIMER
        self.path = Path(path)
        self.recipe = recipe
        self.recipe_hash = recipe_hash
        #: provenance: one ``{"dataset", "file", "sha256", "sheet"}`` per annotation file the samples came from
        self.annotations = sorted((dict(a) for a in annotations), key=lambda a: json.dumps(a, sort_keys=True))
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
        self._replacing = False  # --overwrite: the old cache stays until the first commit replaces it
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.exists():
            raise CacheError(f"output folder does not exist: {parent}")
        if self.path.exists() and not self.path.is_file():
            raise CacheError(f"--out {self.path} exists and is not a file (a folder?); give a .h5 file path")
        _check_writable(parent)
        self._lock = CacheLock(self.path)  # one writer per cache; before anything is touched
        try:
            for tmp in parent.glob(self.path.name + ".tmp-*"):
                tmp.unlink(missing_ok=True)  # a commit killed before its rename
            if overwrite:
                self._replacing = self.path.exists()
                replaced = self.replaced_spool_dir
                if self.spool.dir.exists():  # the old run's spool is set aside, dropped at the first commit
                    if replaced.exists():
                        shutil.rmtree(replaced)
                    os.replace(self.spool.dir, replaced)
                    self._replacing = True
            elif self.path.exists():
                self._check_existing()
            elif self.spool.dir.exists():
                self._check_spool_recipe()
            self._write_spool_stamp()
        except BaseException:
            self._lock.release()
            raise

    @property
    def replaced_spool_dir(self) -> Path:
        """Where ``--overwrite`` sets the old run's spool aside until its first commit."""
        return Path(str(self.spool.dir) + ".replaced")

    # -- validation
    def _check_existing(self):
        from .validate import validate_file

        h5py = _h5py()
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                self._n_cached = validate_file(f, self.path)  # a cache to append to is untrusted too
        except OSError as e:
            raise CacheError(
                f"existing cache is not a readable HDF5 file: {self.path} ({e}); use --overwrite to start again"
            ) from None
        old = str(attrs.get("recipe_hash", ""))
        if old != self.recipe_hash:
            raise CacheError(
                f"cache {self.path} was written with another recipe (hash {old}, now {self.recipe_hash}); "
                f"use --overwrite to recompute it, or another --out"
            )
        try:
            old_ann = json.loads(attrs.get("annotations", "[]"))
        except ValueError:
            old_ann = None
        if self.annotations and old_ann != self.annotations:
            old_files = {(a.get("file"), a.get("sha256")) for a in old_ann or []}
            changed = [a["file"] for a in self.annotations if (a.get("file"), a.get("sha256")) not in old_files]
            raise CacheError(
                f"cache {self.path} was made from other annotation files than this run's "
                f"({', '.join(changed) or 'different files'} differ by name or sha256); the cached "
                f"samples would keep the old annotation: use --overwrite to rebuild it, or another --out"
            )

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
        if not self.path.exists() or self._replacing:
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
        logs = self.spool.logs()
        entries = self.spool.index()
        self._pending = 0
        self._last_commit = time.monotonic()
        if not entries and self.path.exists() and not self._replacing:
            return 0
        latest: dict[str, object] = {}  # key -> its last spooled record (a rerun's record wins)
        fails = []
        for e in entries:
            if e.kind == "sample":
                latest[e.key] = e
            elif e.kind == "failure":
                fails.append({k: str(e.header.get(k, "")) for k in ("key", "stage", "reason")})
        order = sorted(latest)  # deterministic row order within a commit
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        try:
            if self.path.exists() and not self._replacing:
                shutil.copyfile(self.path, tmp)
            # HDF5 does not survive a failing write (it can crash the process when the file is
            # closed), so make sure first that the room the appended samples need is there
            _reserve(tmp, sum(p.stat().st_size for p in logs) + 65536 * (len(order) + len(fails)) + (1 << 20))
            added = self._append(tmp, [latest[k] for k in order], fails)
            n_after = (0 if self._replacing else self._n_cached) + added
            fsync_file(tmp)
            os.replace(tmp, self.path)
            self._n_cached = n_after
            fsync_dir(self.path.parent)
            if self._replacing:
                self._replacing = False
                shutil.rmtree(self.replaced_spool_dir, ignore_errors=True)
        except CacheError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as e:  # disk full, file size limit, I/O error: the cache file was not touched
            tmp.unlink(missing_ok=True)
            kept = (
                f"; {len(order)} finished sample(s) stay spooled in {self.spool.dir} and are committed by the next run"
            )
            raise CacheError(
                f"cannot write cache {self.path} ({type(e).__name__}: {e}); the existing cache is "
                f"unchanged{kept if order else ''}"
            ) from e
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.spool.drop(logs)
        return added

    @staticmethod
    def _storable(recs):
        """Split records into those HDF5 can store and failure entries for the others (a NUL byte
        in a text column, a field that is not a numeric array), so that one bad sample never
        blocks the commit of the rest."""
        good, bad = [], []
        for r in recs:
            why = unstorable(r)
            if why is None:
                good.append(r)
            else:
                bad.append({"key": r.key, "stage": "write", "reason": f"sample {safe_text(r.key)}: {why}"})
        return good, bad

    def _create(self, f, first: SampleRecord | None):
        f.attrs["schema_version"] = SCHEMA_VERSION
        from .. import __version__

        f.attrs["mepipe_version"] = __version__
        f.attrs["recipe"] = json.dumps(self.recipe, sort_keys=True, default=str)
        f.attrs["recipe_hash"] = self.recipe_hash
        f.attrs["versions"] = json.dumps(library_versions(), sort_keys=True)
        f.attrs["annotations"] = json.dumps(self.annotations, sort_keys=True)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["fields"] = json.dumps([])
        f.create_group("data")
        meta = f.create_group("meta")
        for col, kind in META_COLUMNS.items():
            dt = _str_dtype() if kind == "str" else np.int64
            meta.create_dataset(col, shape=(0,), maxshape=(None,), dtype=dt, chunks=(256,))
        from ..aus import AU_LIST

        aus = meta.create_dataset(
            "aus", shape=(0, len(AU_LIST)), maxshape=(None, len(AU_LIST)), dtype=np.uint8, chunks=(256, len(AU_LIST))
        )
        aus.attrs["au_list"] = np.asarray(AU_LIST, dtype=np.int64)
        fg = f.create_group("failures")
        for col in FAILURE_COLUMNS:
            fg.create_dataset(col, shape=(0,), maxshape=(None,), dtype=_str_dtype(), chunks=(256,))

    def _ensure_field(self, f, name: str, arr: np.ndarray):
        data = f["data"]
        if name in data:
            ds = data[name]
            if ds.shape[1:] != arr.shape or ds.dtype != arr.dtype:
                raise CacheError(
                    f"field {name!r}: sample has {arr.dtype}{arr.shape}, cache has {ds.dtype}{ds.shape[1:]}"
                )
            return ds
        n = f["meta/key"].shape[0]
        if n:
            raise CacheError(f"field {name!r} is new but the cache already holds {n} samples without it")
        ds = data.create_dataset(
            name,
            shape=(0,) + arr.shape,
            maxshape=(None,) + arr.shape,
            dtype=arr.dtype,
            chunks=(1,) + arr.shape,
            compression=self.compression,
            compression_opts=self.compression_opts,
            shuffle=self.compression is not None,
        )
        fields = json.loads(f.attrs["fields"])
        f.attrs["fields"] = json.dumps(sorted(set(fields) | {name}))
        return ds

    #: spooled records loaded and written per step of a commit (memory stays bounded)
    COMMIT_CHUNK = 64

    def _append(self, path: Path, entries: list, fails: list[dict]) -> int:
        """Append the spooled records of ``entries`` (and ``fails``) to the HDF5 file ``path``,
        ``COMMIT_CHUNK`` records at a time, each field in one write per chunk."""
        h5py = _h5py()
        with h5py.File(path, "a") as f:
            if "meta" not in f:
                self._create(f, None)
            existing = set(_decode(f["meta/key"][:]))
            fails = list(fails)
            added = 0
            todo = [e for e in entries if safe_text(e.key) not in existing]
            for i in range(0, len(todo), self.COMMIT_CHUNK):
                recs = [self.spool.load(e) for e in todo[i : i + self.COMMIT_CHUNK]]
                recs = [r for r in recs if r is not None]  # a record that fails its CRC is recomputed next run
                recs, bad = self._storable(recs)
                fails += bad
                added += self._append_records(f, recs)
                existing.update(safe_text(r.key) for r in recs)
            self._merge_failures(f, fails, existing)
            f.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            f.attrs["n_samples"] = int(f["meta/key"].shape[0])
            f.attrs["commit_id"] = uuid.uuid4().hex  # a training run resumes only onto the same commit
        return added

    def _append_records(self, f, new: list[SampleRecord]) -> int:
        if not new:
            return 0
        n0 = f["meta/key"].shape[0]
        n1 = n0 + len(new)
        names = sorted(new[0].fields)
        for r in new:
            if sorted(r.fields) != names:
                raise CacheError(f"sample {r.key} has fields {sorted(r.fields)}, expected {names}")
        for name in names:
            ds = self._ensure_field(f, name, np.asarray(new[0].fields[name]))
            ds.resize(n1, axis=0)
            ds[n0:n1] = np.stack([np.asarray(r.fields[name], dtype=ds.dtype) for r in new])
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
        return len(new)

    @staticmethod
    def _merge_failures(f, fails: list[dict], cached: set[str]) -> None:
        """Failures: the latest reason per key; a key that is now cached is no longer failed."""
        fg = f["failures"]
        old = dict(zip(_decode(fg["key"][:]), zip(_decode(fg["stage"][:]), _decode(fg["reason"][:]))))
        for d in fails:
            old[safe_text(d["key"])] = (d["stage"], d["reason"])
        merged = {k: v for k, v in old.items() if k not in cached}
        for j, col in enumerate(FAILURE_COLUMNS):
            vals = list(merged) if col == "key" else [v[j - 1] for v in merged.values()]
            fg[col].resize(len(vals), axis=0)
            if vals:
                fg[col][:] = np.asarray([safe_text(v) for v in vals], dtype=object)

    def close(self) -> None:
        try:
            self.commit()
            self.spool.close()
            if not self.spool.pending():
                self._stamp_path().unlink(missing_ok=True)
                self.spool.cleanup()
        finally:
            self._lock.release()


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
