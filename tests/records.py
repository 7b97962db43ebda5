"""Cache-row metadata for tests that write caches with the real CacheWriter."""

from __future__ import annotations


def sample_meta(dataset: str, subject: str, sample_id: str, emotion: str, aus_known: bool = True) -> dict:
    """Every ``meta`` column of one sample (3 frames: onset 0, apex 1, offset 2), as the runner writes them."""
    return {
        "key": f"{dataset}/{subject}/{sample_id}",
        "dataset": dataset,
        "subject": subject,
        "sample_id": sample_id,
        "emotion": emotion,
        "objective": "",
        "onset": 0,
        "apex": 1,
        "offset": 2,
        "onset_frame": 1,
        "apex_frame": 2,
        "offset_frame": 3,
        "apex_estimated": 0,
        "n_frames": 3,
        "source": "",
        "aus_text": "",
        "aus_known": int(aus_known),
        "notes": "[]",
        "annotation": "",
        "extra": "{}",
    }
