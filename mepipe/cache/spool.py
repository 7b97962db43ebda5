"""The spool: one file per finished sample beside the cache (``C.h5.spool/``), written atomically
before a commit moves it into the cache file."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, atomic_write_text
from .records import SampleRecord
from .schema import CacheError, safe_text


def spool_dir(path: Path) -> Path:
    return Path(str(path) + ".spool")


def _spool_name(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


class Spool:
    """Per-sample files written atomically before they are committed into the cache."""

    def __init__(self, cache_path: Path):
        self.dir = spool_dir(Path(cache_path))

    def _ensure(self):
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, rec: SampleRecord) -> None:
        self._ensure()
        arrays = {f"field__{k}": np.asarray(v) for k, v in rec.fields.items()}
        arrays["aus"] = rec.aus
        arrays["meta"] = np.frombuffer(json.dumps(rec.meta).encode("utf-8"), dtype=np.uint8)
        try:
            with atomic_open(self.dir / f"{_spool_name(rec.key)}.npz") as fh:
                np.savez(fh, **arrays)
        except OSError as e:
            raise CacheError(f"cannot write the spool file of sample {rec.key} in {self.dir}: {e}") from e

    def put_failure(self, key: str, stage: str, reason: str) -> None:
        self._ensure()
        try:
            atomic_write_text(self.dir / f"{_spool_name(key)}.fail.json",
                              json.dumps({"key": key, "stage": stage, "reason": reason}))
        except OSError as e:
            raise CacheError(f"cannot write the spool record of failed sample {key} in {self.dir}: {e}") from e

    def _read(self, p: Path, arrays: bool):
        """``(meta, fields, aus)`` of one spool file (``fields``/``aus`` only when ``arrays``), or None
        for a file that cannot be read (a file renamed into place is whole; anything else is junk
        and is removed)."""
        try:
            with np.load(p, allow_pickle=False) as z:  # members load lazily: meta alone is cheap
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if not arrays:
                    return meta, None, None
                fields = {k[len("field__"):]: z[k] for k in z.files if k.startswith("field__")}
                return meta, fields, z["aus"]
        except Exception:
            p.unlink(missing_ok=True)
            return None

    def records(self):
        """Yield ``(path, SampleRecord)`` for every spooled sample (unreadable files are skipped)."""
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.npz")):
            got = self._read(p, arrays=True)
            if got is not None:
                meta, fields, aus = got
                yield p, SampleRecord(meta["key"], fields, meta, aus)

    def failures(self):
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.fail.json")):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except Exception:
                p.unlink(missing_ok=True)
                continue
            yield p, d

    def keys(self) -> set[str]:
        """Keys of the spooled samples, reading only each file's metadata (resume start-up)."""
        if not self.dir.is_dir():
            return set()
        metas = (self._read(p, arrays=False) for p in sorted(self.dir.glob("*.npz")))
        return {safe_text(m[0]["key"]) for m in metas if m is not None}

    def clear(self) -> None:
        if self.dir.is_dir():
            shutil.rmtree(self.dir)

    def cleanup_temp(self) -> None:
        if self.dir.is_dir():
            for p in self.dir.glob(".*.tmp"):
                p.unlink(missing_ok=True)
            try:
                self.dir.rmdir()  # only when empty
            except OSError:
                pass
