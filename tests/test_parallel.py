"""mepipe.parallel: jobs, and ending a forked pool early."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from mepipe.parallel import BackendError, end_pool, forked_results, resolve_jobs


def _slow_square(x):
    time.sleep(0.05)
    return x * x


def test_resolve_jobs():
    assert resolve_jobs(3) == 3 and resolve_jobs(-1) >= 1
    for bad in (0, -2):
        with pytest.raises(BackendError, match="jobs must be >= 1"):
            resolve_jobs(bad)


def test_forked_results_streams_every_item():
    assert sorted(forked_results(_slow_square, range(12), 2)) == [x * x for x in range(12)]


@pytest.mark.slow
def test_end_pool_kills_the_workers_and_returns_even_if_terminate_blocks():
    """Pool.terminate can block for good (its join of the result thread, after a worker died while
    writing a result); end_pool kills the workers first and waits for terminate a bounded time."""
    pool = multiprocessing.get_context("fork").Pool(2)
    it = pool.imap_unordered(_slow_square, range(200), chunksize=1)
    next(it)
    workers = list(pool._pool)
    never = threading.Event()
    pool.terminate = lambda: never.wait()  # the worst case: terminate never returns
    t0 = time.monotonic()
    end_pool(pool, timeout=0.5)
    assert time.monotonic() - t0 < 3.0
    assert all(p.exitcode is not None for p in workers)  # killed and reaped
    never.set()
    del pool.terminate  # the real one, so the pool's threads end before the test process does
    pool.terminate()


def _blas_threads_after_worker_limit(_):
    from threadpoolctl import threadpool_info

    from mepipe.runner import _limit_threads

    _limit_threads()
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


def test_forked_workers_run_blas_on_one_thread():
    """A worker forked from the client inherits no BLAS limit (loky's get one from their
    environment): every worker's OpenBLAS threads would share the same cores."""
    import numpy  # noqa: F401  (loads its OpenBLAS)
    from threadpoolctl import threadpool_info

    from mepipe.runner import _one_thread

    if not any(i["user_api"] == "blas" for i in threadpool_info()):
        pytest.skip("no BLAS library loaded that threadpoolctl can control")
    # forked as the runner forks: with the client's library pools held at one thread (a child
    # forked from a process whose OpenCV pool had run hangs in its first cv2.setNumThreads)
    with _one_thread():
        got = list(forked_results(_blas_threads_after_worker_limit, [0, 1], 2))
    assert got == [[1], [1]]


def test_client_holds_blas_at_one_thread_while_its_pool_lives_and_restores_it():
    import cv2  # noqa: F401  (its own OpenBLAS: loaded before the count is taken)
    from threadpoolctl import threadpool_info, threadpool_limits

    from mepipe.runner import _one_thread

    def blas():
        return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    with threadpool_limits(2, user_api="blas"):
        if not blas():
            pytest.skip("no BLAS library loaded that threadpoolctl can control")
        before = blas()
        with _one_thread():
            assert blas() == [1]
        assert blas() == before
