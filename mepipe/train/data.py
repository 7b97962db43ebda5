"""The samples a run trains on: one table over every cache (keys, subjects, classes after the label
map), the stacked model inputs of its rows, and each cache's identity for resuming."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import TrainError
from .labels import map_rows


def build_table(cache_paths, label_map=None):
    """One row per usable sample over all caches, plus the classes and what was left out.

    Returns ``(table, classes, label_info)``. ``table`` columns: ``cache`` (index into
    ``cache_paths``), ``row`` (index in that cache), ``key``, ``dataset``, ``subject``
    (namespaced ``dataset/subject``), ``emotion``, ``y``.
    """
    import pandas as pd

    from ..cache import open_cache

    parts = []
    native = []
    for ci, p in enumerate(cache_paths):
        with open_cache(p) as c:
            meta = c.meta.copy()
            native.append(list(c.classes))
        meta["cache"] = ci
        meta["row"] = np.arange(len(meta), dtype=np.int64)
        parts.append(meta)
    if not parts:
        raise TrainError("no caches given")
    meta = pd.concat(parts, ignore_index=True)
    excluded: dict[str, int] = {}
    if label_map is None:
        classes = native[0]
        for p, cl in zip(cache_paths[1:], native[1:]):
            if cl != classes:
                raise TrainError(
                    f"classes mismatch across caches: {cache_paths[0]} has {classes}, {p} has {cl}; "
                    f"give a label map (e.g. --label-map megc2019-3class) to train on them together")
        if len(classes) < 2:
            raise TrainError(f"cache {cache_paths[0]} names fewer than two classes ({classes}); give a label map")
        y = meta["label"].to_numpy().astype(np.int64)
        bad = (y < 0) | (y >= len(classes))
        for d, e in zip(meta.loc[bad, "dataset"], meta.loc[bad, "emotion"]):
            k = f"{d}/{str(e).strip().lower() or '(no label)'}"
            excluded[k] = excluded.get(k, 0) + 1
        map_name, mapping = "native", None
    else:
        map_name, classes, y, resolved = map_rows(meta, label_map)
        y = np.asarray(y, dtype=np.int64)
        bad = y < 0
        for d, e in zip(meta.loc[bad, "dataset"], meta.loc[bad, "emotion"]):
            k = f"{d}/{str(e).strip().lower() or '(no emotion)'}"
            excluded[k] = excluded.get(k, 0) + 1
        mapping = resolved
    meta["y"] = y
    meta = meta.loc[~bad].reset_index(drop=True)
    dup = meta["key"][meta["key"].duplicated()]
    if len(dup):
        raise TrainError(f"sample key {dup.iloc[0]!r} appears in two caches; a sample may be used once")
    meta["subject"] = meta["dataset"].astype(str) + "/" + meta["subject"].astype(str)
    if len(meta) == 0:
        raise TrainError("no sample is left after the label map; check --label-map against the caches' emotions")
    info = {
        "name": map_name,
        "classes": list(classes),
        "map": mapping,
        "excluded": dict(sorted(excluded.items())),
        "excluded_total": int(sum(excluded.values())),
        "counts": {str(c): int((meta["y"] == i).sum()) for i, c in enumerate(classes)},
    }
    cols = ["cache", "row", "key", "dataset", "subject", "emotion", "y"]
    return meta[cols], list(classes), info


def load_inputs(cache_paths, table, fields) -> dict[str, np.ndarray]:
    """Model inputs of every table row, stacked: ``{field: float32 (N, ...)}`` (via ``CacheDataset``)."""
    from ..torch_dataset import CacheDataset

    out: dict[str, np.ndarray] = {}
    cache_col = table["cache"].to_numpy()
    row_col = table["row"].to_numpy()
    for f in fields:
        out[f] = None
    for ci, p in enumerate(cache_paths):
        pos = np.flatnonzero(cache_col == ci)
        if not len(pos):
            continue
        ds = CacheDataset(p, fields=tuple(fields), indices=row_col[pos])
        try:
            for j, i in enumerate(pos):
                inputs, _ = ds[j]
                for f in fields:
                    a = inputs[f].numpy()
                    if out[f] is None:
                        out[f] = np.zeros((len(table),) + a.shape, dtype=np.float32)
                    if out[f].shape[1:] != a.shape:
                        raise TrainError(f"field {f!r} has shape {a.shape} in {p} but {out[f].shape[1:]} "
                                         f"elsewhere; caches trained together need the same sizes")
                    out[f][i] = a
        finally:
            ds.close()
    return out


def cache_identity(p: Path) -> dict:
    """Where a cache is, how many samples and which fields it holds, and the recipe that made them
    (``feature_hash`` covers the stages that compute the arrays: what a model applied to another
    cache must share)."""
    from ..cache import open_cache
    from ..recipe import feature_hash

    with open_cache(p) as c:
        return {"path": str(p.resolve()), "n": len(c), "recipe_hash": str(c.attrs.get("recipe_hash", "")),
                "feature_hash": feature_hash(c.recipe), "updated": str(c.attrs.get("updated", "")),
                "fields": list(c.fields), "recipe": c.recipe}
