"""The cache reader: :func:`open_cache` -> :class:`Cache` (imports h5py, numpy and pandas only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .schema import FAILURE_COLUMNS, META_COLUMNS, CacheError, _decode, _h5py
from .validate import nonfinite_rows, validate_file


def _json_attr(attrs: dict, name: str, kind: type, path):
    try:
        v = json.loads(attrs.get(name, "[]" if kind is list else "{}"))
    except (TypeError, ValueError) as e:
        raise CacheError(f"cache {path}: attribute {name!r} is not JSON ({e})") from None
    if not isinstance(v, kind):
        raise CacheError(f"cache {path}: attribute {name!r} is not a JSON {kind.__name__}")
    return v


class Cache:
    """Read-only view of a cache file. Cheap to open: imports h5py, numpy and pandas only.

    ``len(cache)``, ``cache.meta`` (DataFrame), ``cache.aus`` (N, 21), ``cache.failures``
    (DataFrame), ``cache.emotions``, ``cache.annotations``, ``cache.attrs``, ``cache.recipe``, ``cache.fields``,
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
            self._n = validate_file(self._f, self.path)  # the file is untrusted: checked before any use
            self._meta = None
            self.fields = json.loads(self.attrs.get("fields", "[]"))
            self.annotations = _json_attr(self.attrs, "annotations", list, self.path)
            self.recipe = _json_attr(self.attrs, "recipe", dict, self.path)
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
        """Arrays of sample ``i`` (negative indices allowed): every field plus ``aus``, ``key`` and ``emotion``."""
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
        out["key"] = _decode([self._f["meta/key"][i]])[0]
        out["emotion"] = _decode([self._f["meta/emotion"][i]])[0]
        return out

    @property
    def emotions(self) -> list[str]:
        """The native emotions of the cached samples, sorted (labels are chosen at training time)."""
        return sorted({e for e in self.meta["emotion"] if e})

    def nonfinite(self, fields=None) -> dict[str, list[str]]:
        """Keys of the samples holding NaN or inf, per float field (``{field: [key, ...]}``; fields
        without any are left out). Reads every float array once."""
        keys = self.meta["key"].tolist()
        return {name: [keys[i] for i in rows] for name, rows in nonfinite_rows(self._f, fields).items()}

    def torch_dataset(self, fields=("flow",), **kwargs):
        from ..torch_dataset import CacheDataset

        return CacheDataset(self.path, fields=fields, **kwargs)


def open_cache(path) -> Cache:
    """Open a mepipe HDF5 cache for reading (no dlib, mediapipe, OpenCV or torch imported)."""
    return Cache(path)
