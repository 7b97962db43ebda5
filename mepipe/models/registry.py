"""Model registry: names, configs and builders of the bundled models.

This module does not import torch: :func:`get_config` and :func:`list_models` are cheap, so a
trainer or the CLI can read a model's inputs and training defaults before torch is loaded.
:func:`create_model` imports the model's own module (which imports torch) on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

#: Cache fields a model may consume (see docs/architecture.md, "Cache fields").
KNOWN_INPUTS = ("onset", "apex", "flow", "strain", "ahmsa", "aus", "aus_mask")


@dataclass(frozen=True)
class ModelConfig:
    """What a model consumes and how its paper trained it.

    ``inputs`` are cache field names; the model is called as ``model(**{f: batch[f] for f in
    inputs})``. ``input_size`` is the spatial size the network works at: inputs of another size are
    resized inside the model with ``F.interpolate`` (bilinear). The optimiser fields are the paper's
    defaults where the paper states them; ``defaults_source`` says where each value comes from.
    ``extra`` holds model-specific training hints (e.g. the learning rate of SOA angles).
    """

    name: str
    inputs: tuple[str, ...]
    input_size: int
    description: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    weight_decay: float | None = None
    defaults_source: str = ""
    extra: dict = field(default_factory=dict)
    builder: str = ""  # "module:function" inside mepipe.models


_FACESLEUTH_TRAINING: dict[str, Any] = dict(
    optimizer="adamw",
    lr=8e-4,
    batch_size=50,
    epochs=99,
    weight_decay=0.6,
    defaults_source=(
        "The FaceSleuth paper text gives no optimiser settings; these are the values of the "
        "authors' public training script (AdamW lr 8e-4, weight decay 0.6, batch 50, 99 epochs, "
        "ExponentialLR gamma 0.987 for the first 50 epochs, SOA angles in their own group with "
        "lr 5e-3). The authors' angle group has weight decay 0.2 on a 2-vector whose direction is "
        "the angle (AdamW's decay shrinks its length, not its direction); mepipe's angle is the "
        "scalar itself, which decay would pull toward 0 deg (horizontal), so it gets none."
    ),
)

_SCHEDULE = {"scheduler": "exponential", "gamma": 0.987, "decay_epochs": 50}

_CONFIGS: dict[str, ModelConfig] = {}


def _register(cfg: ModelConfig) -> None:
    for f in cfg.inputs:
        if f not in KNOWN_INPUTS:
            raise ValueError(f"model {cfg.name!r} names unknown input field {f!r}")
    _CONFIGS[cfg.name] = cfg


_register(
    ModelConfig(
        name="facesleuth-cva",
        inputs=("onset", "apex", "aus"),
        input_size=128,
        description="FaceSleuth: apex-onset motion stream with the Continuously Vertical Attention "
        "block, Swin-style Facial Position Focalizer on onset and apex, AU embedding.",
        extra=dict(_SCHEDULE),
        builder="facesleuth:build_cva",
        **_FACESLEUTH_TRAINING,
    )
)
_register(
    ModelConfig(
        name="facesleuth-cva-authors",
        inputs=("onset", "apex", "aus"),
        input_size=224,
        description="FaceSleuth (CVA) at the widths of the authors' public code: 224 px input, motion "
        "stem 180 -> 128, modules 128/128/256/512 (14x14), attention maps chained through learned 1x1 "
        "convs, FPF Swin embed 128, heads 4/8/16, window 7, fused features 100,352 -> 512, head 533 -> "
        "128; no dropout.",
        extra=dict(_SCHEDULE),
        builder="facesleuth:build_cva_authors",
        **_FACESLEUTH_TRAINING,
    )
)
for _name, _mode, _what in (
    ("facesleuth-soa", "independent", "one learnable angle per SOA layer (FaceSleuth-R, config C)"),
    ("facesleuth-soa-shared", "shared", "one learnable angle shared by the four SOA layers (config B)"),
    ("facesleuth-soa-frozen", "frozen", "angle frozen at 0 deg = horizontal attention (config D)"),
):
    _register(
        ModelConfig(
            name=_name,
            inputs=("onset", "apex", "aus"),
            input_size=128,
            description=f"FaceSleuth with Single-Orientation Attention: {_what}.",
            extra=dict(_SCHEDULE, theta_lr=5e-3, theta_weight_decay=0.0),
            builder=f"facesleuth:build_soa_{_mode}",
            **_FACESLEUTH_TRAINING,
        )
    )
_register(
    ModelConfig(
        name="ahmsa-net",
        inputs=("ahmsa",),
        input_size=28,
        description="AHMSA-Net: 7x7 patch embedding, three levels of multi-scale (channel + "
        "spatial) attention blocks (2, 2, 8) joined by adaptive downsampling, MLP head.",
        optimizer="adam",
        lr=5e-6,
        batch_size=256,
        epochs=800,
        weight_decay=None,
        defaults_source="AHMSA-Net paper, Table 3 (weight decay not stated).",
        builder="ahmsa:build",
    )
)
_register(
    ModelConfig(
        name="resnet18-baseline",
        inputs=("onset", "apex"),
        input_size=128,
        description="ResNet-18 (plain torch) on apex-onset by default; the ablation baseline of "
        "FaceSleuth Table 4. Pass inputs=(...) to use other cache fields.",
        extra=dict(_SCHEDULE),
        builder="resnet:build",
        **_FACESLEUTH_TRAINING,
    )
)


def soa_mode(name: str) -> str | None:
    """How model ``name``'s SOA angle is held: ``"independent"`` (one learned angle per layer),
    ``"shared"`` (one learned angle), ``"frozen"``; ``None`` for a model without SOA."""
    b = get_config(name).builder
    return b.rsplit("_", 1)[-1] if b.startswith("facesleuth:build_soa_") else None


def learned_orientation(name: str, model_kwargs: dict | None = None) -> str | None:
    """Why horizontal flips would corrupt model ``name``'s orientation (``None`` if they do not).

    A flip maps an axis θ to 180° - θ (:func:`mepipe.angles.mirrored`): only the horizontal and
    vertical axes are their own mirror images. A learnable SOA angle trained on flipped and
    unflipped samples is pulled toward two axes at once; a frozen angle other than 0 or 90 deg
    reads two different axes. CVA (vertical) and SOA frozen at 0 or 90 deg are flip-safe.
    """
    mode = soa_mode(name)
    if mode is None:
        return None
    if mode in ("independent", "shared"):
        return f"{name} learns its attention angle θ, and a horizontal flip turns an axis θ into 180° - θ"
    init = (model_kwargs or {}).get("init_deg")
    init = 0.0 if init is None else float(init)
    if init % 90.0:
        return (
            f"{name} attends along the fixed axis {init:g}°, which a horizontal flip turns into {(180 - init) % 180:g}°"
        )
    return None


def list_models() -> list[str]:
    """Names of the bundled models, sorted."""
    return sorted(_CONFIGS)


def get_config(name: str, **overrides) -> ModelConfig:
    """The :class:`ModelConfig` of model ``name``; ``overrides`` replace config fields
    (e.g. ``inputs=("flow", "strain")`` for the baseline)."""
    try:
        cfg = _CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; bundled models: {', '.join(list_models())}") from None
    if overrides:
        bad = set(overrides) - set(ModelConfig.__dataclass_fields__)
        if bad:
            raise TypeError(f"not ModelConfig fields: {sorted(bad)}")
        if "inputs" in overrides:
            overrides["inputs"] = tuple(overrides["inputs"])
        cfg = replace(cfg, **overrides)
    return cfg


def create_model(name: str, num_classes: int, **kwargs):
    """Build model ``name`` with ``num_classes`` outputs (a ``torch.nn.Module``).

    ``kwargs`` go to the model's builder (widths, depths, ``inputs`` for the baseline, ...). The
    returned module has ``.config`` (its :class:`ModelConfig`, with the inputs it really uses) and
    is called as ``model(**{field: tensor for field in model.config.inputs})``.
    """
    cfg = get_config(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    module_name, func_name = cfg.builder.split(":")
    module = importlib.import_module(f"mepipe.models.{module_name}")
    return getattr(module, func_name)(cfg, num_classes, **kwargs)
