"""A torch ``Dataset`` over a mepipe cache.

The h5py handle is opened lazily in the process that reads (and reopened after a fork), so a
``DataLoader`` with worker processes works: each worker gets its own handle (as py-feat does).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cache import CacheError, open_cache
from .cache.validate import validate_file

#: how each cache field becomes a float32 tensor
IMAGE_FIELDS = ("onset", "apex")


def field_to_array(name: str, arr: np.ndarray) -> np.ndarray:
    """Cache array -> model-ready float32 array: images (C,H,W) in [0,1], strain (1,H,W), others as stored."""
    if name in IMAGE_FIELDS:
        a = np.asarray(arr, dtype=np.float32) / 255.0
        return np.ascontiguousarray(a.transpose(2, 0, 1))
    if name == "strain":
        return np.asarray(arr, dtype=np.float32)[None]
    return np.asarray(arr, dtype=np.float32)


#: inputs read from the metadata rather than from ``/data``: the AU vector and whether it is known
META_FIELDS = ("aus", "aus_mask")


class CacheDataset:
    """``CacheDataset(path, fields=("flow",), indices=None, transform=None, target_transform=None,
    label_fn=None, label_map="native")``.

    Item ``i`` is ``(inputs, target)``: ``inputs`` a dict ``{field: float32 tensor}`` (see
    :func:`field_to_array`; ``aus`` gives the 21-vector over ``au_list`` (``mepipe``: the cached
    vector; ``authors``: the FaceSleuth authors' list, read from the AU cell), ``aus_mask`` ``(1,)``: 1 where the dataset
    annotates AUs, 0 where the vector is unknown, e.g. SMIC). Labels are chosen here, not in the
    cache: ``target`` is the class of the sample's emotion under ``label_map`` (a name of
    :mod:`mepipe.labels` such as ``casme2-5class``, or a dict; ``native``: the cache's emotions,
    sorted), or ``label_fn(meta_row)`` when given. Without ``indices`` the dataset holds the samples
    the map keeps; ``classes`` names the target indices. ``transform(inputs) -> inputs`` and
    ``target_transform(target) -> target`` follow torchvision.
    """

    def __init__(
        self,
        path,
        fields=("flow",),
        indices=None,
        transform=None,
        target_transform=None,
        label_fn=None,
        label_map="native",
        au_list: str = "mepipe",
    ):
        self.path = Path(path)
        if isinstance(fields, str):
            fields = (fields,)
        self.fields = tuple(fields)
        with open_cache(self.path) as c:
            missing = [f for f in self.fields if f not in META_FIELDS and f not in c.fields]
            if missing:
                raise CacheError(
                    f"cache {self.path} has no field(s) {', '.join(missing)}; it has {', '.join(c.fields)}"
                )
            self.meta = c.meta.copy()
            n = len(c)
        if label_fn is not None:
            self.classes = None
            targets = np.array([label_fn(row) for _, row in self.meta.iterrows()], dtype=np.int64)
        else:
            from .labels import map_rows

            _, classes, y, _ = map_rows(self.meta, label_map, min_classes=1)
            self.classes = list(classes)
            targets = np.asarray(y, dtype=np.int64)
        if indices is None:
            self.indices = np.flatnonzero(targets >= 0) if label_fn is None else np.arange(n)
        else:
            self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(f"indices out of range for cache {self.path} of {n} samples")
        self.transform = transform
        self.target_transform = target_transform
        self.targets = targets[self.indices]
        #: AU vectors over another list than the cache's: read from each sample's AU cell
        self.au_list = au_list
        self._aus = None
        if "aus" in self.fields and au_list != "mepipe":
            from .aus import au_list as _named
            from .aus import parse_aus

            codes = _named(au_list)
            self._aus = np.stack([parse_aus(t, au_list=codes)[0] for t in self.meta["aus_text"]]) if n else None
        self._f = None
        self._pid = None

    def _file(self):
        if self._f is None or self._pid != os.getpid():
            import h5py

            self._f = h5py.File(self.path, "r")
            validate_file(self._f, self.path)  # the file may have been replaced since: check it again
            self._pid = os.getpid()
        return self._f

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        import torch

        j = int(self.indices[i])
        f = self._file()
        inputs = {}
        for name in self.fields:
            if name == "aus":
                arr = self._aus[j] if self._aus is not None else f["meta/aus"][j]
            elif name == "aus_mask":
                arr = np.array([f["meta/aus_known"][j]], dtype=np.float32)
            else:
                arr = f["data"][name][j]
            inputs[name] = torch.from_numpy(field_to_array(name, arr))
        target = int(self.targets[i])
        if self.transform is not None:
            inputs = self.transform(inputs)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return inputs, target

    def __getstate__(self):  # handles never cross process boundaries
        d = dict(self.__dict__)
        d["_f"] = None
        d["_pid"] = None
        return d

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
