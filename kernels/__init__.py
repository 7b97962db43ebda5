"""Numba kernels (installed as mepipe.kernels)."""
