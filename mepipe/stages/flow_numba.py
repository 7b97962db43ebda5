"""The ``numba`` flow engine: dual TV-L1 in ``mepipe.kernels.tvl1``, and the micro-motion presets.

Importing this module registers the engine; Numba itself is imported when the engine first
computes, so :func:`get_preset` is cheap to use anywhere.
"""
from __future__ import annotations

import threading

import numpy as np

from .flow import PRESETS, get_preset, list_presets, register_engine, tvl1_params  # noqa: F401 (re-exported)

def validate_params(p: dict) -> None:
    """Raise ``ValueError`` for TV-L1 parameters the Numba/torch engines cannot use."""
    for key in ("tau", "lambda", "theta", "epsilon", "scaleStep"):
        if not np.isfinite(float(p[key])) or float(p[key]) <= 0:
            raise ValueError(f"TV-L1 parameter {key} must be a positive number, got {p[key]!r}")
    if not 0 < float(p["scaleStep"]) < 1:
        raise ValueError(f"TV-L1 parameter scaleStep must be in (0, 1), got {p['scaleStep']!r}")
    for key in ("nscales", "warps", "innerIterations", "outerIterations"):
        if int(p[key]) != p[key] or int(p[key]) < 1:
            raise ValueError(f"TV-L1 parameter {key} must be an integer >= 1, got {p[key]!r}")
    m = int(p["medianFiltering"])
    if m != p["medianFiltering"] or m < 0 or (m > 1 and (m % 2 == 0 or m > 9)):
        raise ValueError(f"TV-L1 parameter medianFiltering must be 0/1 (off) or odd 3..9, got {p['medianFiltering']!r}")
    if float(p["gamma"]) != 0.0:
        raise ValueError("TV-L1 parameter gamma (illumination term) must be 0 for the numba and torch engines")
    if bool(p["useInitialFlow"]):
        raise ValueError("useInitialFlow is not available in the numba and torch engines (compute() takes no initial flow)")


#: per thread: the last (key, work, base) used by ``NumbaTVL1.compute`` (see ``_workspace``)
_WORKSPACE = threading.local()


def _workspace(hs: np.ndarray, ws: np.ndarray, median: int):
    """This thread's workspace for ``tvl1_pair_into`` at these pyramid sizes, kept between calls.

    Allocating it for every pair cost up to 4 ms of page faults per 256² pair (the pair itself
    takes ~8.5 ms); one per thread is kept (the last size used: 6.3 MB at 256², 1.6 MB at 128²).
    Its contents never influence the result (the kernel writes everything before reading it).
    """
    from mepipe.kernels import tvl1 as K

    key = (tuple(int(h) for h in hs), tuple(int(w) for w in ws), int(median))
    cached = getattr(_WORKSPACE, "entry", None)
    if cached is None or cached[0] != key:
        work = np.empty(int(K.pair_work_size(hs, ws, int(median))), dtype=np.float32)
        base = np.empty(int(ws[0]), dtype=np.uint64)
        cached = _WORKSPACE.entry = (key, work, base)
    return cached[1], cached[2]


def check_batch(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of grey uint8 pairs ``(B, H, W)``; returns C-contiguous arrays."""
    prev, nxt = np.asarray(prev), np.asarray(nxt)
    if prev.ndim != 3 or nxt.ndim != 3:
        raise ValueError(f"compute_batch needs (B, H, W) grey frames, got shapes {prev.shape} and {nxt.shape}")
    if prev.shape != nxt.shape:
        raise ValueError(f"flow frames differ in size: {prev.shape} vs {nxt.shape}")
    if prev.dtype != np.uint8 or nxt.dtype != np.uint8:
        raise ValueError(f"flow frames must be uint8 grey images, got {prev.dtype} and {nxt.dtype}")
    if prev.shape[1] < 2 or prev.shape[2] < 2:
        raise ValueError(f"flow frames must be at least 2x2 pixels, got {prev.shape[1:]}")
    return np.ascontiguousarray(prev), np.ascontiguousarray(nxt)


def check_pair(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate one grey uint8 pair ``(H, W)``."""
    prev, nxt = np.asarray(prev), np.asarray(nxt)
    if prev.ndim != 2 or nxt.ndim != 2:
        raise ValueError(f"flow needs two grey (H, W) frames, got shapes {prev.shape} and {nxt.shape}")
    a, b = check_batch(prev[None], nxt[None])
    return a[0], b[0]


class NumbaTVL1:
    """Dual TV-L1 flow in Numba (float32, one pair per thread).

    ``compute`` runs one pair on the calling thread; ``compute_batch`` spreads pairs over
    ``threads`` Numba threads (default: ``numba.get_num_threads()``, itself limited by
    ``NUMBA_NUM_THREADS``; pass ``threads=1`` when several processes share the cores).
    """

    name = "numba"

    def __init__(self, threads: int | None = None, **params):
        self.params, extra = tvl1_params(params)
        extra.pop("device", None)  # the torch engine's option, accepted so one recipe fits both
        if extra:
            raise ValueError(f"unknown TV-L1 parameters for the numba engine: {', '.join(sorted(extra))}")
        validate_params(self.params)
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = None if threads is None else int(threads)
        self.last_iterations = None

    def _args(self, h: int, w: int):
        from mepipe.kernels import tvl1 as K

        p = self.params
        hs, ws = K.pyramid_sizes(h, w, int(p["nscales"]), float(p["scaleStep"]))
        m = int(p["medianFiltering"])
        if m > 1:
            col, med = K.median_network(m)
        else:
            col = med = np.zeros((0, 2), dtype=np.int64)
        return (hs, ws, float(p["tau"]), float(p["lambda"]), float(p["theta"]), int(p["warps"]),
                float(p["epsilon"]), int(p["innerIterations"]), int(p["outerIterations"]), m, col, med)

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow ``(2, H, W)`` float32 from ``prev`` to ``nxt`` (grey uint8, same size), one thread."""
        from mepipe.kernels import tvl1 as K

        prev, nxt = check_pair(prev, nxt)
        out = np.empty((2,) + prev.shape, dtype=np.float32)
        args = self._args(*prev.shape)
        work, base = _workspace(args[0], args[1], args[9])
        self.last_iterations = int(K.tvl1_pair_into(prev, nxt, *args, out, work, base))
        return out

    def compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flows ``(B, 2, H, W)`` float32 for grey uint8 ``(B, H, W)`` pairs, pairs spread over threads."""
        import numba

        from mepipe.kernels import tvl1 as K

        prev, nxt = check_batch(prev, nxt)
        b, h, w = prev.shape
        out = np.empty((b, 2, h, w), dtype=np.float32)
        if b == 0:
            return out
        n = self.threads if self.threads is not None else numba.get_num_threads()
        n = max(1, min(n, b, numba.config.NUMBA_NUM_THREADS))
        old = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            self.last_iterations = K.tvl1_batch(prev, nxt, *self._args(h, w), out, n)
        finally:
            numba.set_num_threads(old)
        return out


register_engine("numba", NumbaTVL1)
