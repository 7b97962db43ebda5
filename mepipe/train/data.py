"""The samples a run trains on: one table over every cache (keys, subjects, classes after the label
map), the stacked model inputs of its rows, and each cache's identity for resuming."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import TrainError


def read_meta(cache_paths):
    """Every cache's metadata rows in one table, with ``cache`` (index into ``cache_paths``) and
    ``row`` (index in that cache) columns."""
    import pandas as pd

    from ..cache import open_cache

    parts = []
    for ci, p in enumerate(cache_paths):
        with open_cache(p) as c:
            meta = c.meta.copy()
        meta["cache"] = ci
        meta["row"] = np.arange(len(meta), dtype=np.int64)
        parts.append(meta)
    if not parts:
        raise TrainError("no caches given")
    return pd.concat(parts, ignore_index=True)


def _check_same_events(meta) -> None:
    """Refuse caches of one dataset's cameras (SMIC HS, VIS, NIR) in one run: they record the same
    people and events, so a model could be tested on an event it was trained on."""
    from ..labels import SAME_EVENTS

    present = set(meta["dataset"].astype(str))
    for names in SAME_EVENTS.values():
        mixed = sorted(present & set(names))
        if len(mixed) > 1:
            raise TrainError(
                f"{' and '.join(mixed)} record the same people and events with other cameras: one run "
                f"takes one of them (see docs/training.md, 'One person, one subject')"
            )


def uses_composite(cfg) -> bool:
    """Whether the run's classes and membership are the MEGC 2019 composite's: ``--protocol
    composite``, and ``lodo`` unless a label map is given (FaceSleuth-R's cross-dataset setting)."""
    return cfg.protocol == "composite" or (cfg.protocol == "lodo" and cfg.label_map is None)


def build_table(cache_paths, cfg):
    """One row per usable sample over all caches, plus the classes and what was left out.

    Labels are chosen here (the caches hold native emotions): ``cfg.label_map`` (``native`` by
    default, which needs caches of one dataset), or the MEGC 2019 composite's rules or official
    list (:func:`uses_composite`), refused when its counts differ from the reference unless
    ``cfg.allow_partial_composite``. Returns ``(table, classes, label_info)``. ``table`` columns:
    ``cache``, ``row``, ``key``, ``dataset``, ``subject`` (namespaced by dataset family:
    ``smic/s3`` for every SMIC camera), ``emotion``, ``aus_known``, ``y``.
    """
    from ..labels import MEGC2019_CLASSES, LabelMapError, composite_table, dataset_family, map_rows, select_megc2019

    meta = read_meta(cache_paths)
    _check_same_events(meta)
    dup = meta["key"][meta["key"].duplicated()]
    if len(dup):
        raise TrainError(f"sample key {dup.iloc[0]!r} appears in two caches; a sample may be used once")
    composite = None
    try:
        if uses_composite(cfg):
            if cfg.label_map not in (None, "megc2019-3class"):
                raise TrainError(
                    f"--protocol {cfg.protocol} trains the MEGC 2019 composite's three classes; "
                    f"label map {cfg.label_map!r} does not apply (use --protocol loso for another map)"
                )
            y, composite = select_megc2019(meta, cfg.composite_list)
            classes, map_name, mapping = list(MEGC2019_CLASSES), "megc2019-3class", None
            if not composite["matches_reference"] and not cfg.allow_partial_composite:
                raise TrainError(
                    "the selected samples are not the MEGC 2019 composite (counts differ from the "
                    "reference; --allow-partial-composite runs on them anyway, e.g. without one "
                    "dataset, and says so in results.json):\n" + composite_table(composite)
                )
        else:
            spec = cfg.label_map if cfg.label_map is not None else "native"
            if spec == "native":
                fams = sorted({dataset_family(d) for d in meta["dataset"]})
                if len(fams) > 1:
                    raise TrainError(
                        f"the caches hold several datasets ({', '.join(fams)}) whose emotions are "
                        f"written differently; give a label map (e.g. --label-map megc2019-3class)"
                    )
            map_name, classes, y, mapping = map_rows(meta, spec)
            if spec == "native":
                mapping = None
    except LabelMapError as e:
        raise TrainError(str(e)) from None
    y = np.asarray(y, dtype=np.int64)
    bad = y < 0
    excluded: dict[str, int] = {}
    for d, e in zip(meta.loc[bad, "dataset"], meta.loc[bad, "emotion"]):
        k = f"{d}/{str(e).strip().lower() or '(no emotion)'}"
        excluded[k] = excluded.get(k, 0) + 1
    meta["y"] = y
    meta = meta.loc[~bad].reset_index(drop=True)
    meta["subject"] = [f"{dataset_family(d)}/{s}" for d, s in zip(meta["dataset"], meta["subject"])]
    if len(meta) == 0:
        raise TrainError("no sample is left after the label map; check --label-map against the caches' emotions")
    info = {
        "name": map_name,
        "classes": list(classes),
        "map": mapping,
        "excluded": dict(sorted(excluded.items())),
        "excluded_total": int(sum(excluded.values())),
        "counts": {str(c): int((meta["y"] == i).sum()) for i, c in enumerate(classes)},
        "composite": composite,
    }
    cols = ["cache", "row", "key", "dataset", "subject", "emotion", "aus_known", "y"]
    return meta[cols], list(classes), info


def load_inputs(cache_paths, table, fields, au_list: str = "mepipe") -> dict[str, np.ndarray]:
    """Model inputs of every table row, stacked: ``{field: float32 (N, ...)}`` (via ``CacheDataset``;
    ``aus`` over ``au_list``)."""
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
        ds = CacheDataset(p, fields=tuple(fields), indices=row_col[pos], au_list=au_list)
        try:
            for j, i in enumerate(pos):
                inputs, _ = ds[j]
                for f in fields:
                    a = inputs[f].numpy()
                    if out[f] is None:
                        out[f] = np.zeros((len(table),) + a.shape, dtype=np.float32)
                    if out[f].shape[1:] != a.shape:
                        raise TrainError(
                            f"field {f!r} has shape {a.shape} in {p} but {out[f].shape[1:]} "
                            f"elsewhere; caches trained together need the same sizes"
                        )
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
        return {
            "path": str(p.resolve()),
            "n": len(c),
            "recipe_hash": str(c.attrs.get("recipe_hash", "")),
            "feature_hash": feature_hash(c.recipe),
            "updated": str(c.attrs.get("updated", "")),
            "commit_id": str(c.attrs.get("commit_id", "")),
            "fields": list(c.fields),
            "recipe": c.recipe,
            "annotations": c.annotations,
        }
