"""The cache's schema: its version, metadata columns, the error type, and the string helpers every
part of the cache shares (imports numpy only; h5py on first use)."""

from __future__ import annotations

from ..errors import MepipeError

#: 2: every annotated sample cached with its native emotion, objective class, notes and AU
#:    provenance; no label map at preprocessing (labels are chosen at training time); annotation
#:    files' sha256 in the ``annotations`` attribute; ``commit_id`` per commit.
#: 1: labels applied at preprocessing (``label`` column, ``classes`` attribute). Not read.
SCHEMA_VERSION = 2

#: metadata columns: name -> kind ("str" or "int")
META_COLUMNS = {
    "key": "str",
    "dataset": "str",
    "subject": "str",
    "sample_id": "str",
    "emotion": "str",
    "objective": "str",
    "onset": "int",
    "apex": "int",
    "offset": "int",
    "onset_frame": "int",
    "apex_frame": "int",
    "offset_frame": "int",
    "apex_estimated": "int",
    "n_frames": "int",
    "source": "str",
    "aus_text": "str",
    "aus_known": "int",
    "notes": "str",
    "annotation": "str",
    "extra": "str",
}
FAILURE_COLUMNS = ("key", "stage", "reason")


class CacheError(MepipeError):
    """A cache file cannot be used (missing, truncated, other schema, other recipe)."""


def _h5py():
    import h5py

    return h5py


def _str_dtype():
    return _h5py().string_dtype("utf-8")


def safe_text(value) -> str:
    """``value`` as a string HDF5 can store as UTF-8: bytes of a non-UTF-8 file name become ``\\xNN``,
    a NUL byte (which HDF5 strings cannot hold) becomes the four characters ``\\x00``."""
    s = str(value).replace("\x00", "\\x00")
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:
        raw = s.encode("utf-8", "surrogateescape")  # a path read from a non-UTF-8 file system
    except UnicodeEncodeError:
        raw = s.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _decode(arr) -> list[str]:
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in arr]


def check_schema(attrs: dict, path) -> None:
    """CacheError unless ``attrs`` carry a ``schema_version`` this mepipe reads
    (:func:`mepipe.cache.validate.schema_version`)."""
    from .validate import schema_version

    schema_version(attrs, path)
