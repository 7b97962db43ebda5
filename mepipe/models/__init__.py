"""Bundled models and their registry (in the manner of timm).

>>> from mepipe.models import create_model, get_config, list_models
>>> list_models()[:3]
['ahmsa-net', 'facesleuth-cva', 'facesleuth-cva-authors']
>>> get_config("ahmsa-net").inputs
('ahmsa',)

``import mepipe.models`` does not import torch; :func:`create_model` does. Each model is called
as ``model(**inputs)`` with exactly the cache fields of ``model.config.inputs`` as batched float
tensors and returns logits ``(B, num_classes)``. See docs/models.md.
"""

from __future__ import annotations

from .registry import KNOWN_INPUTS, ModelConfig, create_model, get_config, list_models

__all__ = ["KNOWN_INPUTS", "ModelConfig", "create_model", "get_config", "list_models"]
