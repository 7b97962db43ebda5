"""Optical strain of a flow field (the heavy loop is the Numba kernel in ``mepipe.kernels.strain``)."""

from __future__ import annotations

import numpy as np

from ..errors import StageError


def _check(flow: np.ndarray) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"strain needs a (2, H, W) flow field, got shape {flow.shape}")
    if flow.shape[1] < 2 or flow.shape[2] < 2:
        raise ValueError(f"strain needs at least 2x2 pixels, got {flow.shape[1]}x{flow.shape[2]}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def strain_components(flow: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float32: e_xx = ∂u/∂x, e_yy = ∂v/∂y, e_xy = ½(∂u/∂y + ∂v/∂x)."""
    from mepipe.kernels.strain import strain_components_kernel

    flow = _check(flow)
    out = np.empty((3,) + flow.shape[1:], dtype=np.float32)
    strain_components_kernel(flow[0], flow[1], out)
    return out


def optical_strain(flow: np.ndarray, components: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` float32 strain magnitude sqrt(e_xx² + e_yy² + 2·e_xy²)."""
    from mepipe.kernels.strain import strain_magnitude_kernel

    comp = strain_components(flow) if components is None else components
    out = np.empty(comp.shape[1:], dtype=np.float32)
    strain_magnitude_kernel(comp, out)
    return out


def strain_numpy(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference ``(components, magnitude)``, used by tests and benchmarks."""
    u, v = np.asarray(flow, dtype=np.float64)
    dudy, dudx = np.gradient(u)
    dvdy, dvdx = np.gradient(v)
    comp = np.stack([dudx, dvdy, 0.5 * (dudy + dvdx)])
    mag = np.sqrt(comp[0] ** 2 + comp[1] ** 2 + 2 * comp[2] ** 2)
    return comp.astype(np.float32), mag.astype(np.float32)


def compute_strain(flow: np.ndarray, components: bool = False):
    """Pipeline entry: ``(magnitude, components or None)``; failures become ``StageError``."""
    try:
        comp = strain_components(flow)
        mag = optical_strain(flow, comp)
    except Exception as e:
        raise StageError("strain", f"strain failed: {e}") from e
    return mag, (comp if components else None)
