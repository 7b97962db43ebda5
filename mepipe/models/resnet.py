"""ResNet-18 in plain torch: the ablation baseline of FaceSleuth (Table 4).

The input tensor is built from the configured cache fields, in the order given:
``onset`` + ``apex`` together contribute ``apex - onset`` (3 channels, the default, as the
FaceSleuth baseline's motion input); ``flow`` 2, ``strain`` 1, ``ahmsa`` 3 channels; ``onset`` or
``apex`` alone 3 channels. ``aus`` is not an image and is refused. Spatial inputs are resized to
``input_size`` inside the model and must agree in size with each other.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ResidualBlock, check_image, resize_to
from .registry import KNOWN_INPUTS, ModelConfig

_CHANNELS = {"onset": 3, "apex": 3, "flow": 2, "strain": 1, "ahmsa": 3}


def input_channels(inputs) -> int:
    """Channels of the stacked input built from cache fields ``inputs``."""
    inputs = tuple(inputs)
    if not inputs:
        raise ValueError("resnet18-baseline needs at least one input field")
    for f in inputs:
        if f not in KNOWN_INPUTS:
            raise ValueError(f"unknown input field {f!r}; known: {KNOWN_INPUTS}")
        if f not in _CHANNELS:
            raise ValueError(f"input field {f!r} is not an image; resnet18-baseline takes {tuple(_CHANNELS)}")
    if len(set(inputs)) != len(inputs):
        raise ValueError(f"repeated input field in {inputs}")
    n = sum(_CHANNELS[f] for f in inputs)
    if "onset" in inputs and "apex" in inputs:
        n -= 3  # the pair becomes one apex - onset image
    return n


class ResNet18(nn.Module):
    """ResNet-18: 7x7/2 conv stem + 3x3/2 max pool, four stages of two basic blocks
    (width ``w, 2w, 4w, 8w``), global average pooling, linear classifier.

    Call as ``model(**{f: tensor for f in inputs})``; returns logits ``(B, num_classes)``."""

    def __init__(
        self,
        num_classes: int,
        inputs=("onset", "apex"),
        input_size: int = 128,
        width: int = 64,
        dropout: float = 0.0,
        config: ModelConfig | None = None,
    ):
        super().__init__()
        self.inputs = tuple(inputs)
        self.in_ch = input_channels(self.inputs)
        self.input_size = input_size
        self.config = config
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_ch, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        layers, cin = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            stride = 1 if i == 0 else 2
            layers += [ResidualBlock(cin, cout, stride), ResidualBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def stack(self, inputs: dict) -> torch.Tensor:
        """Build the network's input tensor from the named fields (see the module docstring)."""
        missing = [f for f in self.inputs if f not in inputs]
        extra = [f for f in inputs if f not in self.inputs]
        if missing or extra:
            raise TypeError(f"resnet18-baseline built for inputs {self.inputs}; missing {missing}, unexpected {extra}")
        parts = []
        shape = None
        for f in self.inputs:
            x = check_image(f, inputs[f], _CHANNELS[f])
            if shape is None:
                shape = x.shape[-2:]
            elif x.shape[-2:] != shape:
                raise ValueError(f"input {f!r} has spatial size {tuple(x.shape[-2:])}, expected {tuple(shape)}")
            if f == "apex" and "onset" in self.inputs:
                continue
            if f == "onset" and "apex" in self.inputs:
                x = check_image("apex", inputs["apex"], 3) - x
            parts.append(x)
        return resize_to(torch.cat(parts, dim=1), self.input_size)

    def forward(self, **inputs) -> torch.Tensor:
        x = self.stack(inputs)
        x = self.layers(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(cfg: ModelConfig, num_classes: int, **kwargs) -> ResNet18:
    """``resnet18-baseline``; ``inputs=(...)`` picks the cache fields."""
    inputs = tuple(kwargs.pop("inputs", cfg.inputs))
    size = kwargs.pop("input_size", cfg.input_size)
    model = ResNet18(num_classes, inputs=inputs, input_size=size, **kwargs)
    model.config = replace(cfg, inputs=inputs, input_size=size)
    return model
