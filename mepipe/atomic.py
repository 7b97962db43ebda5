"""Atomic file writes: a temporary file beside the target, flushed, fsynced, renamed over it.

A reader (or a run killed at any moment) sees either the old file or the new one, never a part.
The cache's spool, the training run's fold records and checkpoints, and every report go through
:func:`atomic_open`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


def fsync_file(path) -> None:
    """Flush a file's contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Flush a folder's entries (a rename into it) to the disk; silently skipped where the
    file system cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_name(path, suffix: str = ".tmp") -> Path:
    """The hidden temporary name beside ``path`` that this process writes before the rename."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{suffix}")


@contextmanager
def atomic_open(path, mode: str = "wb", encoding: str | None = None):
    """``with atomic_open(p) as fh: ...`` writes ``fh`` to a temporary file and renames it over
    ``p`` once the block ends without an error (after flush and fsync); on an error the
    temporary file is removed and ``p`` is untouched."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, mode, encoding=encoding if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
