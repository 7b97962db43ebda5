"""Optical strain from a flow field (Numba).

e_xx = du/dx, e_yy = dv/dy, e_xy = (du/dy + dv/dx) / 2, magnitude sqrt(e_xx² + e_yy² + 2 e_xy²).
Derivatives are those of ``numpy.gradient`` with unit spacing: central differences inside,
one-sided first differences on the border.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=False, fastmath=False)
def strain_components_kernel(u, v, out):
    """Fill ``out`` (3,H,W) with e_xx, e_yy, e_xy of the flow (u, v) (each (H,W) float32)."""
    h, w = u.shape
    for y in prange(h):
        if h == 1:
            y0, y1, sy = y, y, 1.0
        elif y == 0:
            y0, y1, sy = 0, 1, 1.0
        elif y == h - 1:
            y0, y1, sy = h - 2, h - 1, 1.0
        else:
            y0, y1, sy = y - 1, y + 1, 2.0
        for x in range(w):
            if w == 1:
                x0, x1, sx = x, x, 1.0
            elif x == 0:
                x0, x1, sx = 0, 1, 1.0
            elif x == w - 1:
                x0, x1, sx = w - 2, w - 1, 1.0
            else:
                x0, x1, sx = x - 1, x + 1, 2.0
            dudx = (u[y, x1] - u[y, x0]) / sx
            dvdx = (v[y, x1] - v[y, x0]) / sx
            dudy = (u[y1, x] - u[y0, x]) / sy
            dvdy = (v[y1, x] - v[y0, x]) / sy
            out[0, y, x] = dudx
            out[1, y, x] = dvdy
            out[2, y, x] = 0.5 * (dudy + dvdx)


@njit(cache=True, nogil=True)
def strain_magnitude_kernel(comp, out):
    _, h, w = comp.shape
    for y in range(h):
        for x in range(w):
            exx = comp[0, y, x]
            eyy = comp[1, y, x]
            exy = comp[2, y, x]
            out[y, x] = np.sqrt(exx * exx + eyy * eyy + 2.0 * exy * exy)
