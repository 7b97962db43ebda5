"""Warping an image by a known displacement field, with exact ground truth.

Used by ``mepipe synth`` and the flow benchmark. Given a smooth field ``d`` on the grid of the
first image, :func:`warp_forward` renders ``nxt`` such that ``prev(x) = nxt(x + d(x))``, which is
exactly the quantity an optical flow engine estimates (``flow(x) = d(x)``). It inverts the
mapping ``x -> x + d(x)`` by fixed-point iteration (converges when ``|∇d| < 1``, true for the
smooth, small fields used here) rather than using the first-order ``nxt(y) ≈ prev(y - d(y))``.
"""

from __future__ import annotations

import numpy as np


def gaussian_bumps(shape, centers, vectors, sigmas) -> np.ndarray:
    """Sum of Gaussian-weighted displacement bumps: ``(2, H, W)`` float32.

    ``centers`` (K,2) as (x, y) pixels, ``vectors`` (K,2) peak displacement (dx, dy) in pixels,
    ``sigmas`` (K,) or scalar spatial extent in pixels.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    field = np.zeros((2, h, w), dtype=np.float64)
    centers = np.atleast_2d(np.asarray(centers, dtype=np.float64))
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    sigmas = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), (len(centers),))
    for (cx, cy), (dx, dy), s in zip(centers, vectors, sigmas):
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * s * s))
        field[0] += dx * g
        field[1] += dy * g
    return field.astype(np.float32)


def random_smooth_field(
    shape, max_disp: float, rng: np.random.Generator, n_bumps: int = 4, sigma_range=(0.06, 0.15), region=None
) -> np.ndarray:
    """A random smooth field whose largest displacement is ``max_disp`` pixels.

    Bumps are placed inside ``region`` = (x0, y0, x1, y1) (default: the central 60 %), with
    spatial extent ``sigma_range`` as a fraction of the smaller image side.
    """
    h, w = shape
    x0, y0, x1, y1 = region if region is not None else (0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h)
    centers = np.stack([rng.uniform(x0, x1, n_bumps), rng.uniform(y0, y1, n_bumps)], axis=1)
    ang = rng.uniform(0, 2 * np.pi, n_bumps)
    vec = np.stack([np.cos(ang), np.sin(ang)], axis=1) * rng.uniform(0.5, 1.0, (n_bumps, 1))
    sig = rng.uniform(*sigma_range, n_bumps) * min(h, w)
    field = gaussian_bumps(shape, centers, vec, sig)
    peak = float(np.sqrt((field**2).sum(0)).max())
    return field * np.float32(max_disp / peak) if peak > 0 else field


def invert_mapping(d: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Absolute source coordinates ``(map_x, map_y)`` with ``x + d(x) = y`` for every output pixel y."""
    import cv2

    _, h, w = d.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.ascontiguousarray(d[0], dtype=np.float32)
    dy = np.ascontiguousarray(d[1], dtype=np.float32)
    mx, my = xx.copy(), yy.copy()
    for _ in range(iterations):
        ux = cv2.remap(dx, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        uy = cv2.remap(dy, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mx, my = xx - ux, yy - uy
    return mx, my


def warp_forward(prev: np.ndarray, d: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Render ``nxt`` with ``prev(x) = nxt(x + d(x))`` (bicubic resampling, same dtype as ``prev``)."""
    import cv2

    if d.shape[0] != 2 or d.shape[1:] != prev.shape[:2]:
        raise ValueError(f"field shape {d.shape} does not match image shape {prev.shape}")
    mx, my = invert_mapping(d, iterations)
    src = prev.astype(np.float32)
    out = cv2.remap(src, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    if prev.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(prev.dtype)


def endpoint_error(flow: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean endpoint error ``mean ||flow - gt||`` over ``mask`` (all pixels by default)."""
    e = np.sqrt(((np.asarray(flow, np.float64) - gt) ** 2).sum(0))
    return float(e[mask].mean() if mask is not None else e.mean())
