"""Scale-out through existing engines: joblib locally (loky processes, threads), its dask and ray
backends for a cluster. Preprocessing (per sample) and training (per fold) share this set-up.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from .errors import MepipeError

log = logging.getLogger("mepipe")

#: joblib backends: local (the default: worker processes forked from a warm client on Linux, loky
#: elsewhere), loky/multiprocessing (local processes), threading, dask and ray (a cluster)
BACKENDS = ("local", "loky", "threading", "multiprocessing", "dask", "ray")


def forks_warm() -> bool:
    """Whether ``local`` forks its workers from the (warmed) client: Linux, where fork is the
    multiprocessing default and the libraries used here survive it; elsewhere ``local`` is loky."""
    import multiprocessing
    import sys

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


class BackendError(MepipeError):
    """A parallel backend cannot be used (unknown, or its extra is not installed)."""


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_jobs(jobs: int) -> int:
    """``jobs`` >= 1 as given; ``-1`` means every core this process may use (:func:`cpu_count`)."""
    jobs = int(jobs)
    if jobs == -1:
        return cpu_count()
    if jobs < 1:
        raise BackendError(f"jobs must be >= 1, or -1 for all {cpu_count()} cores; got {jobs}")
    return jobs


@contextmanager
def dask_client(jobs: int, scheduler: str | None = None):
    """A ``distributed.Client``: connected to ``scheduler`` when given, else the active client,
    else a loopback ``LocalCluster`` of ``jobs`` single-threaded worker processes (closed after)."""
    try:
        from distributed import Client, LocalCluster, get_client
    except ImportError:
        raise BackendError("backend 'dask' needs the dask extra: pip install 'mepipe[dask]'") from None
    if scheduler:
        client = Client(scheduler)
        log.info("dask client: %s", client)
        try:
            yield client
        finally:
            client.close()
        return
    try:
        client = get_client()
    except ValueError:
        client = None
    if client is not None:
        log.info("dask client (active): %s", client)
        yield client
        return
    cluster = LocalCluster(
        n_workers=max(1, jobs), threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)
    log.info("dask client (local cluster): %s", client)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextmanager
def backend_context(backend: str, jobs: int, scheduler: str | None = None):
    """A joblib ``parallel_config`` for ``backend`` with ``jobs`` workers (``scheduler``: a dask
    scheduler or ray address; default a local cluster)."""
    import joblib

    if backend == "local":
        if forks_warm():
            import warnings

            with warnings.catch_warnings():  # the client's idle library threads are not used by the children
                warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks.*")
                with joblib.parallel_config(backend="multiprocessing", n_jobs=jobs):
                    yield
        else:
            with joblib.parallel_config(backend="loky", n_jobs=jobs):
                yield
        return
    if backend in ("loky", "threading", "multiprocessing", "sequential"):
        with joblib.parallel_config(backend=backend, n_jobs=jobs):
            yield
        return
    if backend == "dask":
        with dask_client(jobs, scheduler):
            with joblib.parallel_config(backend="dask", n_jobs=jobs):
                yield
        return
    if backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError:
            raise BackendError("backend 'ray' needs the ray extra: pip install 'mepipe[ray]'") from None
        register_ray()
        started = False
        if not ray.is_initialized():
            ray.init(address=scheduler, num_cpus=None if scheduler else max(1, jobs), include_dashboard=False)
            started = True
        try:
            with joblib.parallel_config(backend="ray", n_jobs=jobs):
                yield
        finally:
            if started:
                ray.shutdown()
        return
    raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _client_handles_ctrl_c() -> None:
    """A forked worker ignores SIGINT: Ctrl-C reaches the whole process group, and the client,
    which commits what finished, ends the pool itself (no traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def forked_results(fn, items, jobs: int):
    """``fn(item)`` for every item of ``items`` on ``jobs`` processes forked from this one, yielded
    as each finishes, in any order (the standard library's ``multiprocessing.Pool.imap_unordered``,
    one item per task). Used by the ``local`` backend: the children share everything this process
    loaded before the pool started. joblib's own multiprocessing backend cannot return results as
    they finish, and waiting for whole groups of them left cores idle at every group's end. The
    pool is terminated when the generator is closed early (an error or an interrupt in the
    client)."""
    import multiprocessing
    import warnings

    with warnings.catch_warnings():  # the client's idle library threads are not used by the children
        warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks.*")
        pool = multiprocessing.get_context("fork").Pool(max(1, int(jobs)), initializer=_client_handles_ctrl_c)
    finished = False
    try:
        yield from pool.imap_unordered(fn, items, chunksize=1)
        finished = True
    finally:
        if finished:
            pool.close()
            pool.join()
        else:
            end_pool(pool)


def end_pool(pool, timeout: float = 5.0) -> None:
    """Stop a ``multiprocessing`` pool at once (an error or an interrupt in the client): its
    workers are killed first (a sample in flight is lost and computed again by the next run), then
    ``Pool.terminate`` ends the pool's threads in the background, waited for at most ``timeout``
    seconds. ``terminate`` joins the pool's result thread, and a worker ended while it was writing
    a result (hundreds of kB) or holding the task queue's lock can leave that join, or terminate's
    own lock wait, blocked for good: the client must still commit and exit."""
    import threading

    for p in list(getattr(pool, "_pool", None) or []):
        if p.exitcode is None:
            p.kill()
    t = threading.Thread(target=pool.terminate, name="mepipe-pool-end", daemon=True)
    t.start()
    t.join(timeout)
    for p in list(getattr(pool, "_pool", None) or []):
        p.join(0.5)  # reap the killed workers (no zombies while the client lives on)


def parallel_results(calls, jobs: int, chunk: int | None = None):
    """Results of ``calls`` (``joblib.delayed(f)(...)`` objects) on the active joblib backend,
    yielded as they finish.

    Backends without generator output (ray's) run in chunks of ``chunk`` calls (default
    ``4 * jobs``), so that finished work still comes back while the rest goes on.
    """
    import joblib
    from joblib.parallel import get_active_backend

    active, _ = get_active_backend()
    if getattr(active, "supports_return_generator", False):
        yield from joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)(calls)
        return
    calls = list(calls)
    step = chunk or 4 * jobs
    with joblib.Parallel(n_jobs=jobs, return_as="list", batch_size=1) as par:
        for i in range(0, len(calls), step):
            yield from par(calls[i : i + step])
