"""The HDF5 feature cache: writer (crash-safe, resumable) and reader (plain h5py, no heavy imports).

Layout (``docs/cache-format.md`` is the reference)::

    /                  attrs: schema_version, mepipe_version, recipe (JSON), recipe_hash,
                              versions (JSON), classes (JSON), fields (JSON), created, updated
    /data/<field>      one stacked dataset per field, (N, ...), one sample per chunk (compression: recipe [cache])
    /meta/<column>     one 1-D dataset per metadata column (strings are UTF-8), /meta/aus (N, 21)
    /failures/<column> key, stage, reason: samples that did not make it, and why

Crash safety: each finished sample is first written to a spool folder beside the cache
(``C.h5.spool/``, records appended to a log, each with a CRC). A commit copies
the cache file, appends the spooled samples to the copy, flushes it, and atomically renames it over
the cache, then deletes the spooled files it committed. The cache file is therefore always a
complete, closed HDF5 file: a run killed at any moment leaves every committed sample readable, and
the next run commits whatever was spooled before the kill. Readers never see a half-written sample.
"""

from __future__ import annotations

from .reader import Cache, open_cache
from .records import SampleRecord, record_from_sample
from .schema import FAILURE_COLUMNS, META_COLUMNS, SCHEMA_VERSION, CacheError, check_schema, safe_text
from .spool import Spool, spool_dir
from .writer import CacheWriter

__all__ = [
    "Cache",
    "CacheError",
    "CacheWriter",
    "FAILURE_COLUMNS",
    "META_COLUMNS",
    "SCHEMA_VERSION",
    "SampleRecord",
    "Spool",
    "check_schema",
    "open_cache",
    "record_from_sample",
    "safe_text",
    "spool_dir",
]
