"""Classes for training: the caches' native labels, or a label map applied to their ``emotion`` column.

Label maps are those of :mod:`mepipe.labels` (by name: ``megc2019-3class``, ``casme2-5class``,
``samm-5class``, ``native``; or a dict ``{"classes": [...], "map": {emotion: class},
"drop_unmapped": bool}``; see that module). Here they are applied to cache metadata rows instead
of :class:`mepipe.sample.Sample` objects. Samples the map drops are excluded from training and
evaluation and counted per emotion.
"""
from __future__ import annotations

from collections import namedtuple

from ..labels import LabelMapError, class_of, list_label_maps, norm, resolve_spec

__all__ = ["LabelMapError", "map_rows", "list_label_maps"]

_Row = namedtuple("_Row", "key dataset emotion")


def map_rows(meta, spec) -> tuple[str, list[str], list[int], dict]:
    """Apply label map ``spec`` to the rows of a cache meta table (columns key, dataset, emotion).

    Returns ``(name, classes, y, resolved)``: ``y[i]`` is the class index of row ``i`` or -1 when
    the map drops it; ``resolved`` is the validated map (for results.json).
    """
    rows = [_Row(k, d, e) for k, d, e in zip(meta["key"], meta["dataset"], meta["emotion"])]
    name = spec if isinstance(spec, str) else str(spec.get("name", "custom")) if isinstance(spec, dict) else "custom"
    resolved = resolve_spec(spec, rows)
    classes = list(resolved["classes"])
    if len(classes) < 2:
        raise LabelMapError(f"label map {name!r} gives fewer than two classes ({classes})")
    index = {norm(c): i for i, c in enumerate(classes)}
    y = []
    for r in rows:
        c = class_of(r, resolved)
        y.append(-1 if c is None else index[norm(c)])
    return name, classes, y, resolved
