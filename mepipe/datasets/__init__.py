"""Dataset adapters: each turns a dataset as distributed into :class:`mepipe.sample.Sample` records."""
from .manifest import read_manifest

__all__ = ["read_manifest"]
