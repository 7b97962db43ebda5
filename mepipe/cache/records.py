"""One finished sample as the cache stores it: :class:`SampleRecord`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


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
        "objective": getattr(sample, "objective", "") or "",
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
        "aus_known": int(bool(getattr(sample, "aus_known", True))),
        "notes": json.dumps([list(n) for n in getattr(sample, "notes", [])]),
        "annotation": str((sample.extra or {}).get("annotation", "")),
        "extra": json.dumps(sample.extra or {}, sort_keys=True, default=str),
    }
    return SampleRecord(sample.key, fields, meta, np.asarray(aus_vec, dtype=np.uint8))
