"""The spool: finished samples and failures, appended to a log beside the cache (``C.h5.spool/``)
until a commit moves them into the cache file.

One writer per cache (``C.h5.lock``) appends records to one log per session
(``log-<time>-<pid>.bin``). A record is ``MAGIC``, the lengths of its JSON header and raw payload,
a CRC-32 of both, the header (the record's key, metadata and the dtype, shape and offset of each
array) and the arrays' bytes. No pickle: the header is JSON, the arrays raw numeric bytes whose
dtypes are checked when read. A run killed while appending leaves at most one partial record at
the end of its log; it fails its length or CRC check and is dropped, with everything after it.
Appending is a buffered write and no ``fsync``: a killed process loses nothing the kernel has
taken; the commit that moves the records into the cache file fsyncs that file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .records import SampleRecord
from .schema import CacheError, safe_text

MAGIC = b"MEPIPESP"
_PREFIX = struct.Struct("<8sQQI")  # magic, header bytes, payload bytes, crc32(header + payload)
_MAX_HEADER = 16 << 20


class Entry:
    """One record of a spool log: its header and where its bytes are."""

    __slots__ = ("header", "log", "offset", "hlen", "plen", "crc")

    def __init__(self, header: dict, log: Path, offset: int, hlen: int, plen: int, crc: int):
        self.header, self.log, self.offset, self.hlen, self.plen, self.crc = header, log, offset, hlen, plen, crc

    @property
    def kind(self) -> str:
        return str(self.header.get("type", ""))

    @property
    def key(self) -> str:
        return str(self.header["key"])


def spool_dir(path: Path) -> Path:
    return Path(str(path) + ".spool")


class Spool:
    """Append-only logs of finished samples and failures, read back by the commit."""

    def __init__(self, cache_path: Path):
        self.dir = spool_dir(Path(cache_path))
        self._fh: BinaryIO | None = None
        self._log: Path | None = None

    def _ensure(self):
        self.dir.mkdir(parents=True, exist_ok=True)

    def logs(self) -> list[Path]:
        return sorted(self.dir.glob("log-*.bin")) if self.dir.is_dir() else []

    def _append(self, header: dict, arrays: list[tuple[str, np.ndarray]]) -> None:
        if self._fh is None:
            self._ensure()
            self._log = self.dir / f"log-{time.time_ns():020d}-{os.getpid()}.bin"
            self._fh = open(self._log, "ab", buffering=0)
        fh = self._fh
        specs, offset = [], 0
        for name, a in arrays:
            specs.append(
                {"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes}
            )
            offset += a.nbytes
        header = dict(header, arrays=specs)
        hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
        crc = zlib.crc32(hb)
        views = []
        for _, a in arrays:
            v = memoryview(a.data).cast("B")  # the contiguous array's bytes, no copy
            crc = zlib.crc32(v, crc)
            views.append(v)
        try:
            os.writev(fh.fileno(), [_PREFIX.pack(MAGIC, len(hb), offset, crc), hb, *views])
        except OSError as e:
            raise CacheError(f"cannot write to the spool {self._log}: {e}") from e

    def put(self, rec: SampleRecord) -> None:
        arrays = [(f"field__{k}", np.ascontiguousarray(v)) for k, v in sorted(rec.fields.items())]
        arrays.append(("aus", np.ascontiguousarray(rec.aus, dtype=np.uint8)))
        self._append({"type": "sample", "key": rec.key, "meta": rec.meta}, arrays)

    def put_failure(self, key: str, stage: str, reason: str) -> None:
        self._append({"type": "failure", "key": key, "stage": stage, "reason": reason}, [])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # -- reading
    def _scan(self, path: Path):
        """``Entry`` of each whole record of one log, in order (headers only); stops at the first
        record that is partial or malformed (a run killed while appending)."""
        try:
            fh = open(path, "rb")
        except OSError:
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            pos = 0
            while pos + _PREFIX.size <= size:
                fh.seek(pos)
                magic, hlen, plen, crc = _PREFIX.unpack(fh.read(_PREFIX.size))
                end = pos + _PREFIX.size + hlen + plen
                if magic != MAGIC or hlen > _MAX_HEADER or end > size:
                    return
                hb = fh.read(hlen)
                try:
                    header = json.loads(hb.decode("utf-8"))
                except ValueError:
                    return
                if not isinstance(header, dict) or "key" not in header:
                    return
                yield Entry(header, path, pos, hlen, plen, crc)
                pos = end

    def index(self) -> list[Entry]:
        """Every whole record of every log, in the order written (headers only: cheap)."""
        return [e for log in self.logs() for e in self._scan(log)]

    @staticmethod
    def load(entry: Entry) -> SampleRecord | None:
        """The sample record of ``entry``, its CRC checked and its arrays numeric; None when not."""
        try:
            with open(entry.log, "rb") as fh:
                fh.seek(entry.offset + _PREFIX.size)
                hb = fh.read(entry.hlen)
                body = fh.read(entry.plen)
        except OSError:
            return None
        if len(body) != entry.plen or zlib.crc32(body, zlib.crc32(hb)) != entry.crc:
            return None
        h = entry.header
        try:
            arrays = {}
            for spec in h.get("arrays", []):
                dt = np.dtype(spec["dtype"])
                if dt.kind not in "biuf" or dt.hasobject:
                    return None  # only numbers are spooled: anything else is not ours
                n = int(np.prod(spec["shape"], dtype=np.int64))
                arrays[spec["name"]] = np.frombuffer(body, dtype=dt, count=n, offset=int(spec["offset"])).reshape(
                    spec["shape"]
                )
            fields = {k[len("field__") :]: v for k, v in arrays.items() if k.startswith("field__")}
            return SampleRecord(h["key"], fields, dict(h["meta"]), arrays["aus"])
        except (KeyError, ValueError, TypeError):
            return None

    def records(self):
        """Yield every readable spooled :class:`SampleRecord`, in the order written."""
        for e in self.index():
            if e.kind == "sample":
                rec = self.load(e)
                if rec is not None:
                    yield rec

    def failures(self):
        """Yield every spooled failure as ``{"key", "stage", "reason"}``."""
        for e in self.index():
            if e.kind == "failure":
                yield {k: str(e.header.get(k, "")) for k in ("key", "stage", "reason")}

    def keys(self) -> set[str]:
        """Keys of the spooled samples, reading only the records' headers (resume start-up)."""
        return {safe_text(e.key) for e in self.index() if e.kind == "sample"}

    def pending(self) -> bool:
        return any(p.stat().st_size for p in self.logs())

    def drop(self, logs) -> None:
        """Forget logs whose records are now in the cache (the session's own log is emptied and
        reused)."""
        for p in logs:
            if p == self._log and self._fh is not None:
                os.ftruncate(self._fh.fileno(), 0)
            else:
                p.unlink(missing_ok=True)

    def clear(self) -> None:
        self.close()
        if self.dir.is_dir():
            shutil.rmtree(self.dir)

    def cleanup(self) -> None:
        """Remove empty logs and, when nothing else is left, the spool folder."""
        self.close()
        for p in self.logs():
            if not p.stat().st_size:
                p.unlink(missing_ok=True)
        try:
            self.dir.rmdir()  # only when empty
        except OSError:
            pass
