"""Classes for training: label maps (:mod:`mepipe.labels`) applied to cache metadata rows.

Kept for imports of ``mepipe.train.labels``; the maps and :func:`map_rows` live in :mod:`mepipe.labels`.
"""

from __future__ import annotations

from ..labels import LabelMapError, list_label_maps, map_rows

__all__ = ["LabelMapError", "map_rows", "list_label_maps"]
