"""The one place a torch device is chosen: explicit, checked, and logged."""

from __future__ import annotations

import logging

from .errors import MepipeError

log = logging.getLogger("mepipe")

DEVICE_HELP = "auto | cpu | cuda | cuda:N (auto: cuda when torch sees a GPU, else cpu)"


class DeviceError(MepipeError, ValueError):
    """A device was asked for that does not exist or cannot be used."""


def resolve_device(device: str | None = "auto", *, purpose: str = "", log_level: int = logging.INFO) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are checked (a GPU asked for and absent is an error, never a silent CPU run).
    Returns the device as a string for ``torch.device``; logs the choice at ``log_level``
    (``purpose`` says what for; a caller that prints the device itself passes ``logging.DEBUG``)."""
    import torch

    d = str(device or "auto").strip().lower()
    if d == "auto":
        d = "cuda" if torch.cuda.is_available() else "cpu"
    elif d.startswith("cuda"):
        if d != "cuda" and not (d.startswith("cuda:") and d[5:].isdigit()):
            raise DeviceError(f"unknown device {device!r}; use {DEVICE_HELP}")
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} requested but torch sees no CUDA GPU (torch {torch.__version__}); "
                f"use --device cpu or auto"
            )
        idx = int(d[5:]) if ":" in d else 0
        if idx >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} requested but torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    elif d != "cpu":
        raise DeviceError(f"unknown device {device!r}; use {DEVICE_HELP}")
    log.log(log_level, "%sdevice %s", f"{purpose}: " if purpose else "", describe_device(d))
    return d


def describe_device(device: str) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu (2 threads)``."""
    import torch

    if str(device).startswith("cuda"):
        idx = torch.device(device).index or 0
        return f"{device} ({torch.cuda.get_device_name(idx)})"
    return f"cpu ({torch.get_num_threads()} threads)"
