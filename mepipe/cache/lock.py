"""One writer per cache: an exclusive ``flock`` on ``C.h5.lock`` for as long as a writer is open.

A second writer is refused at once, naming the process that holds the lock; the kernel drops the
lock when its holder exits or is killed, so a stale lock file never blocks a later run. Readers
take no lock: they see the last committed file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .schema import CacheError


def lock_path(cache_path) -> Path:
    return Path(str(cache_path) + ".lock")


class CacheLock:
    """Hold the write lock of ``cache_path`` (raises :class:`CacheError` when another process does)."""

    def __init__(self, cache_path):
        self.cache_path = Path(cache_path)
        self.path = lock_path(cache_path)
        self.fd: int | None = None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise CacheError(
                    f"cache {self.cache_path} is being written by another mepipe process (pid {holder}); "
                    f"wait for it to finish, or write to another --out"
                ) from None
            try:  # the lock file may have been removed and made anew while we waited for it
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # removed while held: no one can lock the old file after us
        finally:
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.release()
