"""The ``numba`` flow engine: dual TV-L1 in ``mepipe.kernels.tvl1``, and the micro-motion presets.

Importing this module registers the engine; Numba itself is imported when the engine first
computes, so :func:`get_preset` is cheap to use anywhere.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from .flow import PRESETS, FlowEngine, check_batch, check_pair, get_preset, list_presets, register_engine, tvl1_params  # noqa: F401 (re-exported)


def check_numba_params(p: dict, name: str) -> None:
    """The limits of the numba and torch engines (OpenCV's illumination term and initial flow are
    not implemented there)."""
    if float(p["gamma"]) != 0.0:
        raise ValueError(
            f"{name} engine: TV-L1 parameter gamma (illumination term) must be 0 for the numba and torch engines"
        )
    if bool(p["useInitialFlow"]):
        raise ValueError(
            f"{name} engine: useInitialFlow is not available in the numba and torch engines "
            f"(compute() takes no initial flow)"
        )


log = logging.getLogger(__name__)

_COMPILE_CHECKED = threading.Event()


def kernels_cached() -> bool | None:
    """Whether numba's on-disk cache holds the compiled TV-L1 pair kernel (``None``: cannot tell).
    Without it the first pair compiles every kernel of the engine, 15-25 s on two cores."""
    from mepipe.kernels import tvl1 as K

    try:
        from pathlib import Path

        return Path(K.tvl1_pair_into._cache._cache_file._index_path).is_file()
    except Exception:  # numba's cache internals moved: say nothing rather than guess
        return None


def _say_if_compiling() -> None:
    """Log once per process, before the first pair, when the kernels are about to be compiled."""
    if _COMPILE_CHECKED.is_set():
        return
    _COMPILE_CHECKED.set()
    if kernels_cached() is False:
        from mepipe.kernels import tvl1 as K

        where = getattr(getattr(K.tvl1_pair_into, "_cache", None), "_cache_path", "numba's cache")
        log.info(
            "numba engine: compiling the TV-L1 kernels (the first run after an install or upgrade; "
            "15-25 s on two cores, then cached in %s)",
            where,
        )


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


class NumbaTVL1(FlowEngine):
    """Dual TV-L1 flow in Numba (float32, one pair per thread).

    ``compute`` runs one pair on the calling thread; ``compute_batch`` spreads pairs over
    ``threads`` Numba threads (default: ``numba.get_num_threads()``, itself limited by
    ``NUMBA_NUM_THREADS``; pass ``threads=1`` when several processes share the cores).
    """

    name = "numba"
    OPTIONS = ("threads",)

    def __init__(self, **params):
        super().__init__(**params)
        threads = self.options.get("threads")
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = None if threads is None else int(threads)

    def check(self, params: dict) -> None:
        check_numba_params(params, self.name)

    def _args(self, h: int, w: int):
        from mepipe.kernels import tvl1 as K

        p = self.params
        hs, ws = K.pyramid_sizes(h, w, int(p["nscales"]), float(p["scaleStep"]))
        m = int(p["medianFiltering"])
        if m > 1:
            col, med = K.median_network(m)
        else:
            col = med = np.zeros((0, 2), dtype=np.int64)
        return (
            hs,
            ws,
            float(p["tau"]),
            float(p["lambda"]),
            float(p["theta"]),
            int(p["warps"]),
            float(p["epsilon"]),
            int(p["innerIterations"]),
            int(p["outerIterations"]),
            m,
            col,
            med,
        )

    def _compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """One pair on the calling thread."""
        from mepipe.kernels import tvl1 as K

        _say_if_compiling()
        out = np.empty((2,) + prev.shape, dtype=np.float32)
        args = self._args(*prev.shape)
        work, base = _workspace(args[0], args[1], args[9])
        self.last_iterations = int(K.tvl1_pair_into(prev, nxt, *args, out, work, base))
        return out

    def _compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Pairs spread over ``threads`` Numba threads."""
        import numba

        from mepipe.kernels import tvl1 as K

        _say_if_compiling()
        b, h, w = prev.shape
        out = np.empty((b, 2, h, w), dtype=np.float32)
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
