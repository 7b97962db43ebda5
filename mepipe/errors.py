"""Errors and failure records shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass


class MepipeError(RuntimeError):
    """Base class: a clear, user-facing error."""


class AnnotationError(MepipeError):
    """An annotation file cannot be used at all (missing file or columns)."""


class StageError(MepipeError):
    """A stage failed for one sample. ``stage`` names it; the message says why."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class Failure:
    """One sample that did not make it into the cache, and why."""

    key: str  # dataset/subject/sample_id, or a row reference when no id could be read
    stage: str  # annotation | frames | crop | align | flow | strain | compose | write
    reason: str  # names the file and the sample
