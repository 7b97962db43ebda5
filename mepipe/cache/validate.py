"""Caches are files people hand each other: every one is checked against the documented schema
before anything of it is used.

Refused, naming the object: external and soft links, virtual datasets, datasets with external
raw storage (each could make the reader open other files), any group, dataset or dtype the schema
does not define, a ``schema_version`` that is not one this mepipe reads, columns and fields whose
row counts disagree with ``meta/key``. NaN and inf in cached arrays are not refused here (the
file is well formed); :func:`nonfinite_rows` finds them for ``inspect`` and ``train``.
"""

from __future__ import annotations

import json

import numpy as np

from .schema import FAILURE_COLUMNS, META_COLUMNS, SCHEMA_VERSION, CacheError

#: cache fields: name -> (dtype kinds allowed, dimensions of one sample)
FIELD_SPECS: dict[str, tuple[str, int]] = {
    "onset": ("u", 3),
    "apex": ("u", 3),
    "flow": ("f", 3),
    "strain": ("f", 2),
    "strain_components": ("f", 3),
    "landmarks": ("f", 3),
    "transform": ("f", 3),
    "ahmsa": ("f", 3),
}
#: schema versions this mepipe reads
READABLE_VERSIONS = (SCHEMA_VERSION,)
#: members of ``/meta`` besides the columns of META_COLUMNS
META_EXTRA = ("aus",)


def schema_version(attrs: dict, path) -> int:
    """The file's ``schema_version`` as an int; CacheError unless it is an integer this mepipe reads."""
    v = attrs.get("schema_version")
    if v is None:
        raise CacheError(f"{path} is an HDF5 file but not a mepipe cache (no schema_version attribute)")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise CacheError(
            f"cache {path}: schema_version {v!r} is not an integer version; this mepipe reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    v = int(v)
    if v > SCHEMA_VERSION:
        raise CacheError(
            f"cache {path} has schema version {v}, newer than this mepipe reads ({SCHEMA_VERSION}); upgrade mepipe"
        )
    if v not in READABLE_VERSIONS:
        raise CacheError(
            f"cache {path} has old schema version {v} (this mepipe reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); rebuild it: mepipe preprocess ... --out {path} "
            f"--overwrite"
        )
    return v


def _links(group, prefix: str):
    """``(name, link object)`` of every member under ``group``, recursively through hard-linked
    groups only (soft and external links are reported, not followed)."""
    import h5py

    for name in group:
        full = f"{prefix}/{name}"
        link = group.get(name, getlink=True)
        yield full, link
        if isinstance(link, h5py.HardLink):
            obj = group.get(name)
            if isinstance(obj, h5py.Group):
                yield from _links(obj, full)


def _check_dataset(ds, name: str, path) -> None:
    if ds.is_virtual:
        raise CacheError(f"cache {path}: {name} is a virtual dataset (it would read other files); refused")
    if ds.external:
        raise CacheError(f"cache {path}: {name} keeps its data in external files {ds.external!r}; refused")
    kind = ds.dtype.kind
    if kind == "O":
        import h5py

        if h5py.check_string_dtype(ds.dtype) is None:
            raise CacheError(f"cache {path}: {name} has an object dtype that is not a string; refused")
    elif kind not in "biuf":
        raise CacheError(f"cache {path}: {name} has dtype {ds.dtype}, which the cache schema does not use; refused")


def validate_file(f, path) -> int:
    """Check an open h5py file against the cache schema; returns its sample count.

    Raises :class:`CacheError` naming the first object that does not belong."""
    import h5py

    schema_version({k: v for k, v in f.attrs.items()}, path)
    for name, link in _links(f, ""):
        if isinstance(link, h5py.ExternalLink):
            raise CacheError(f"cache {path}: {name} is an external link to {link.filename}:{link.path}; refused")
        if isinstance(link, h5py.SoftLink):
            raise CacheError(f"cache {path}: {name} is a soft link to {link.path}; refused")
    top = set(f.keys())
    expected = {"data", "meta", "failures"}
    if top - expected:
        raise CacheError(
            f"cache {path}: unexpected object(s) {', '.join(sorted('/' + n for n in top - expected))} "
            f"outside the documented schema (docs/cache-format.md)"
        )
    missing = expected - top
    if missing:
        raise CacheError(f"cache {path} is damaged or incomplete: no {', '.join(sorted('/' + n for n in missing))}")
    for g in expected:
        if not isinstance(f[g], h5py.Group):
            raise CacheError(f"cache {path}: /{g} is not a group")
    meta, data, fails = f["meta"], f["data"], f["failures"]
    allowed_meta = set(META_COLUMNS) | set(META_EXTRA)
    for grp, allowed, what in (
        (meta, allowed_meta, "meta column"),
        (data, set(FIELD_SPECS), "field"),
        (fails, set(FAILURE_COLUMNS), "failures column"),
    ):
        for name in grp:
            obj = grp[name]
            full = f"{grp.name}/{name}"
            if name not in allowed or not isinstance(obj, h5py.Dataset):
                raise CacheError(
                    f"cache {path}: unexpected {what} {full} outside the documented schema (docs/cache-format.md)"
                )
            _check_dataset(obj, full, path)
    if "key" not in meta:
        raise CacheError(f"cache {path} is damaged or incomplete: no /meta/key")
    n = int(meta["key"].shape[0])
    for col, kind in META_COLUMNS.items():
        if col not in meta:
            continue  # a column added after a cache was written is read as absent
        ds = meta[col]
        if ds.ndim != 1 or ds.shape[0] != n:
            raise CacheError(f"cache {path}: /meta/{col} has shape {ds.shape}, expected ({n},) like /meta/key")
        is_str = ds.dtype.kind == "O"
        if is_str != (kind == "str"):
            raise CacheError(f"cache {path}: /meta/{col} has dtype {ds.dtype}, expected {kind}")
    if "aus" in meta:
        a = meta["aus"]
        if a.ndim != 2 or a.shape[0] != n or a.dtype.kind not in "ub":
            raise CacheError(f"cache {path}: /meta/aus has {a.dtype}{a.shape}, expected uint8 ({n}, AUs)")
    for name in data:
        ds = data[name]
        kinds, ndim = FIELD_SPECS[name]
        if ds.shape[0] != n or ds.ndim != ndim + 1 or ds.dtype.kind not in kinds:
            raise CacheError(
                f"cache {path}: /data/{name} has {ds.dtype}{ds.shape}; expected {n} rows of "
                f"{ndim}-D {'floats' if kinds == 'f' else 'uint8'} like /meta/key"
            )
    lengths = {c: fails[c].shape for c in fails}
    if len({s for s in lengths.values()}) > 1 or any(len(s) != 1 for s in lengths.values()):
        raise CacheError(f"cache {path}: the failures columns disagree in length: {lengths}")
    try:
        fields = json.loads(f.attrs.get("fields", "[]"))
    except (TypeError, ValueError) as e:
        raise CacheError(f"cache {path}: attribute 'fields' is not JSON ({e})") from None
    if not isinstance(fields, list) or sorted(fields) != sorted(data):
        raise CacheError(
            f"cache {path}: attribute 'fields' ({fields!r}) does not list the datasets of /data ({sorted(data)})"
        )
    return n


def nonfinite_rows(f, fields=None, chunk: int = 64) -> dict[str, list[int]]:
    """Rows holding NaN or inf, per float field: ``{field: [row, ...]}`` (only fields with such rows)."""
    out: dict[str, list[int]] = {}
    data = f["data"]
    for name in fields if fields is not None else list(data):
        if name not in data or data[name].dtype.kind != "f":
            continue
        ds = data[name]
        bad: list[int] = []
        for s in range(0, ds.shape[0], chunk):
            block = ds[s : s + chunk]
            ok = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
            bad.extend(int(s + i) for i in np.flatnonzero(~ok))
        if bad:
            out[name] = bad
    return out
