"""Batch preprocessing: samples -> frames -> crop -> align -> flow -> strain -> compose -> cache.

One writer (this process) owns the cache file; per-sample work runs in-process or on a joblib
backend (loky processes locally, dask or ray on a cluster). Stage models (dlib, MediaPipe, the flow
engine) are loaded once per worker process and reused. A failing sample is recorded with its stage
and reason; the batch goes on. A rerun with the same recipe skips every sample already cached.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .aus import parse_aus
from .cache import CacheWriter, record_from_sample, safe_text
from .errors import Failure, StageError
from .recipe import recipe_hash

log = logging.getLogger("mepipe")

STAGES = ("frames", "crop", "align", "flow", "strain", "compose")
SHOWN_FAILURES = 40  # failures listed in the summary (all are in the cache's failures table)


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    out: str = ""
    #: one entry per process that computed samples: its pid and the seconds from its start to its
    #: first finished sample (``ready_s``); this process has ``parent: true``
    workers: list = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"{self.out}: {self.done} done, {self.skipped} skipped (already cached), "
            f"{len(self.failed)} failed, of {self.total} samples in {self.seconds:.1f} s"
        ]
        if self.interrupted:
            lines.append(
                f"interrupted: {self.done + self.skipped + len(self.failed)} of {self.total} samples "
                f"handled; every finished sample is committed; rerun the same command to resume"
            )
        if self.failed:
            by_stage = Counter(f.stage for f in self.failed)
            lines.append("failed by stage: " + ", ".join(f"{k} {v}" for k, v in sorted(by_stage.items())))
            for f in self.failed[:SHOWN_FAILURES]:
                lines.append(f"  {f.key} [{f.stage}] {f.reason}")
            if len(self.failed) > SHOWN_FAILURES:
                lines.append(f"  ... and {len(self.failed) - SHOWN_FAILURES} more (see the cache's failures table)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- per-process stages

_STATE: dict = {}
_STATE_LOCK = threading.Lock()


_LIMITED = threading.local()


def _limit_threads():
    """One thread per worker for OpenCV, Numba and BLAS/OpenMP (the workers share the cores); once
    per thread, as Numba's setting is per thread. A worker forked from the client inherits no BLAS
    limit (loky's workers get one from their environment): without one, OpenBLAS's threads of every
    worker spin on the same cores and the forked workers ran 20-40 % slower."""
    if getattr(_LIMITED, "done", False):
        return
    _LIMITED.done = True
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # process-wide, for the rest of this worker's life
    except Exception:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:
        pass
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:
        pass


_WATCHING = threading.Event()


def watch_parent(pid: int | None, interval: float = 0.5) -> None:
    """In a local worker process: exit as soon as the client process ``pid`` is gone, so that a
    killed ``mepipe`` (SIGKILL, SIGTERM) leaves no worker behind. Started once per process; does
    nothing in the client itself or without a pid (remote workers)."""
    import os

    if pid is None or pid == os.getpid() or _WATCHING.is_set():
        return
    _WATCHING.set()

    start_ppid = os.getppid()

    def watch():
        import time as _t

        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)  # the client died: nothing will collect this worker's results
            except PermissionError:
                pass  # alive, owned by someone else (cannot happen for our own client)
            if os.getppid() != start_ppid:
                os._exit(3)  # re-parented: the process that started this worker is gone (or a zombie)
            _t.sleep(interval)

    threading.Thread(target=watch, name="mepipe-parent-watch", daemon=True).start()


def build_stages(recipe: dict) -> dict:
    """The stage objects of ``recipe`` (cropper, aligner, flow engine), checked. Cheap: the models
    (dlib, MediaPipe, compiled kernels) load at their first use. A setting no stage accepts raises
    :class:`~mepipe.recipe.RecipeError` naming the recipe and the section."""
    from .recipe import RecipeError
    from .stages.align import Aligner
    from .stages.crop import FaceCropper
    from .stages.flow import engine_from_recipe

    name = recipe.get("name", "recipe")
    out = {}
    for key, section, build in (
        ("cropper", "crop", FaceCropper),
        ("aligner", "align", Aligner),
        ("engine", "flow", engine_from_recipe),
    ):
        try:
            out[key] = build(recipe.get(section))
        except RecipeError:
            raise
        except (ValueError, TypeError) as e:
            raise RecipeError(f"recipe {name}: [{section}] {e}") from None
    comp = recipe.get("compose") or {}
    if comp.get("enabled"):
        from .stages.compose import tile_layout

        try:  # a size the layout cannot put on the patch grid is refused before any work
            tile_layout(comp.get("size", 28), comp.get("layout"))
        except ValueError as e:
            raise RecipeError(f"recipe {name}: [compose] {e}") from None
    return out


_WARMED = threading.Event()  # warm_up ran in this process, or in the process it was forked from


def warm_up(recipe: dict) -> None:
    """Load everything this process needs for ``recipe`` (dlib's models, MediaPipe's module, the
    compiled flow and strain kernels) without starting any library's threads: workers forked from
    a warm process start warm."""
    cropper, aligner, engine = _stages(recipe, False)
    cropper.warm()
    aligner.warm()
    from .stages.strain import compute_strain

    tiny = np.zeros((32, 32), np.uint8)
    compute_strain(engine.compute(tiny, tiny), bool(recipe["strain"]["components"]))
    _WARMED.set()


def _stages(recipe: dict, single_thread: bool):
    """Stage objects for this recipe, built once per process."""
    h = recipe_hash(recipe)
    with _STATE_LOCK:  # the threads of --backend threading share these (their models are per thread)
        if _STATE.get("hash") != h:
            _STATE.clear()
            _STATE.update(hash=h, **build_stages(recipe))
        state = dict(_STATE)
    if single_thread:
        _limit_threads()
    return state["cropper"], state["aligner"], state["engine"]


def _n_frames(source: Path) -> int:
    from .frames import is_video, list_frame_files

    if is_video(source):
        import cv2

        cap = cv2.VideoCapture(str(source))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
        cap.release()
        return n
    return len(list_frame_files(source))


def compute_sample(sample, recipe: dict, single_thread: bool = False, timer=None) -> dict:
    """Run every stage on one sample; returns the cache fields. Raises ``StageError`` naming the stage.

    ``recipe`` is complete (every key of every stage section, as :func:`mepipe.recipe.load_recipe`
    and :func:`preprocess` give it).

    ``timer`` (a :class:`mepipe.timing.StageTimer`) times each stage; by default nothing is timed.
    """
    import cv2

    from .frames import FrameError, read_frames
    from .stages.flow import compute_flow
    from .stages.strain import compute_strain
    from .timing import NO_TIMER

    timer = timer or NO_TIMER
    cropper, aligner, engine = _stages(recipe, single_thread)
    if sample.onset > sample.apex:
        raise StageError("frames", f"onset {sample.onset} is after apex {sample.apex}")
    try:
        with timer.stage("frames"):
            onset, apex = read_frames(sample.source, [sample.onset, sample.apex])
            n_frames = _n_frames(sample.source)
    except FrameError as e:
        raise StageError("frames", str(e)) from None
    with timer.stage("crop (dlib)"):
        box = cropper.detect(onset).box
    with timer.stage("align: similarity + warp"):
        al = aligner.align(onset, apex, box, timer=timer)
        g_on = cv2.cvtColor(al.onset, cv2.COLOR_BGR2GRAY)
        g_ap = cv2.cvtColor(al.apex, cv2.COLOR_BGR2GRAY)
    with timer.stage("flow"):
        flow = compute_flow(g_on, g_ap, engine)
    landmarks = al.landmarks
    if aligner.p["apex_landmarks"] == "flow":  # moved by the flow (also in register mode: more precise)
        from .stages.align import move_points

        landmarks = np.stack([al.landmarks[0], move_points(al.landmarks[0], flow)])
    with timer.stage("strain"):
        strain, comps = compute_strain(flow, recipe["strain"]["components"])
    colour = recipe["frames"]["colour"]
    fields = {
        "onset": al.onset if colour else g_on[:, :, None],
        "apex": al.apex if colour else g_ap[:, :, None],
        "flow": flow,
        "strain": strain,
        "landmarks": landmarks,
        "transform": np.stack([al.matrix, al.apex_matrix]).astype(np.float64),
    }
    if comps is not None:
        fields["strain_components"] = comps
    comp = recipe["compose"]
    if comp["enabled"]:
        from .stages.compose import compose_regions

        try:
            with timer.stage("compose"):
                fields["ahmsa"] = compose_regions(flow, strain, landmarks[1], size=comp["size"], layout=comp["layout"])
        except StageError:
            raise
        except Exception as e:
            raise StageError("compose", f"five-region composition failed: {e}") from e
    return {"fields": fields, "n_frames": n_frames}


_FIRST_DONE = threading.Event()
_IMPORTED = time.monotonic()


def _process_age() -> float:
    """Seconds since this process started (Linux: its start time in /proc/self/stat; elsewhere
    since mepipe.runner was imported)."""
    import os

    try:
        fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, clock ticks after boot
        uptime = float(open("/proc/uptime").read().split()[0])
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def process_one(sample, recipe: dict, single_thread: bool = False, timer=None, parent_pid: int | None = None):
    """Worker entry: ``("ok", key, record, info)`` or ``("fail", key, Failure, info)``; never raises
    for a bad sample. ``info`` is ``{"pid", "ready_s", "started_warm"}`` for the first sample a
    process finishes (its start-up, for the benchmark; ``started_warm``: forked from a warmed
    client), else None.

    ``parent_pid``: the client's pid, given to local worker processes (:func:`watch_parent`)."""
    out = _process_one(sample, recipe, single_thread, timer, parent_pid)
    info = None
    if not _FIRST_DONE.is_set():
        import os

        _FIRST_DONE.set()
        info = {"pid": os.getpid(), "ready_s": round(_process_age(), 3), "started_warm": _WARMED.is_set()}
    return (*out, info)


def _process_one(sample, recipe: dict, single_thread: bool, timer, parent_pid):
    from .timing import NO_TIMER

    watch_parent(parent_pid)
    timer = timer or NO_TIMER
    where = f"sample {sample.key} ({sample.source})"
    try:
        vec, _ = parse_aus(sample.aus)
        out = compute_sample(sample, recipe, single_thread, timer)
        with timer.stage("write: record"):
            rec = record_from_sample(sample, out["fields"], vec, out["n_frames"])
        return ("ok", sample.key, rec)
    except StageError as e:
        return ("fail", sample.key, Failure(sample.key, e.stage, f"{where}: {e.reason}"))
    except MemoryError:
        raise
    except Exception as e:  # a library failing on odd input must not kill the batch
        return ("fail", sample.key, Failure(sample.key, "unexpected", f"{where}: {type(e).__name__}: {e}"))


# ----------------------------------------------------------------------------- driver


def check_run(recipe: dict, out, jobs: int = 1, backend: str = "local") -> tuple[dict, int]:
    """Check what a run needs before it starts: the recipe (schema and every stage built), the
    backend, the worker count and the output path. Returns the completed recipe and the jobs."""
    from .cache import CacheError
    from .parallel import BACKENDS, BackendError, resolve_jobs
    from .recipe_schema import complete_recipe, validate_recipe

    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    jobs = resolve_jobs(jobs or 1)
    recipe = complete_recipe(validate_recipe(recipe, f"recipe {recipe.get('name', '')}".strip()))
    build_stages(recipe)
    out = Path(out)
    if out.exists() and not out.is_file():
        raise CacheError(f"--out {out} exists and is not a file (a folder?); give a .h5 file path")
    return recipe, jobs


def preprocess(
    samples,
    out,
    recipe: dict,
    jobs: int = 1,
    backend: str = "local",
    scheduler: str | None = None,
    overwrite: bool = False,
    annotations=(),
    failures=(),
    progress: bool = True,
    timer=None,
) -> RunSummary:
    """Run the pipeline on ``samples`` into the cache ``out``; returns a :class:`RunSummary`.

    ``timer`` (a :class:`mepipe.timing.StageTimer`) times every stage and the write path of an
    in-process run (``jobs = 1``; worker processes are not timed).

    ``failures`` are problems found before any stage ran (bad annotation rows): they are recorded
    in the cache's failures table too. ``annotations`` is the provenance of the samples (one
    ``{"dataset", "file", "sha256", "sheet"}`` per annotation file): a cache resumes only from the
    same files. No label map runs here: every sample is cached with its native emotion. Ctrl-C commits what was finished and returns with
    ``summary.interrupted`` set.
    """
    from .timing import NO_TIMER

    t0 = time.monotonic()
    timer = timer or NO_TIMER
    recipe, jobs = check_run(recipe, out, jobs, backend)  # everything is checked before the cache is touched
    if jobs == 1 and backend in ("local", "loky", "sequential"):
        _stages(recipe, False)  # built once here, and used for every sample
    out = Path(out)
    ccfg = recipe["cache"]
    with timer.stage("write: open/close"):
        writer = CacheWriter(
            out,
            recipe,
            recipe_hash(recipe),
            annotations=annotations,
            overwrite=overwrite,
            timer=timer,
            compression=ccfg["compression"],
            compression_opts=ccfg["compression_opts"],
            commit_every=ccfg["commit_every"],
            commit_seconds=ccfg["commit_seconds"],
            commit_growth=ccfg["commit_growth"],
        )
    summary = RunSummary(total=len(samples) + len(failures), out=str(out))
    from .sample import text_problem

    unfit = {id(s): text_problem(s) for s in samples}
    for s in samples:  # values the cache cannot store are refused per sample, before any work
        if unfit[id(s)] is not None:
            f = Failure(safe_text(s.key), "annotation", f"sample {safe_text(s.key)} ({s.source}): {unfit[id(s)]}")
            summary.failed.append(f)
            writer.fail(f.key, f.stage, f.reason)
    samples = [s for s in samples if unfit[id(s)] is None]
    keys = [s.key for s in samples]
    dup = [k for k, n in Counter(keys).items() if n > 1]
    done = writer.done_keys()
    todo = []
    seen = set()
    for s in samples:
        if s.key in dup:
            if s.key not in seen:
                f = Failure(s.key, "annotation", f"duplicate sample id {s.key}: {keys.count(s.key)} samples share it")
                summary.failed.append(f)
                writer.fail(f.key, f.stage, f.reason)
            seen.add(s.key)
        elif safe_text(s.key) in done:
            summary.skipped += 1
        else:
            todo.append(s)
    sample_keys = set(keys)
    for n, f in enumerate(failures, start=2):
        if f.key in sample_keys:
            # e.g. a duplicate row whose first occurrence is kept: under the sample's own key the
            # failure would vanish from the failures table once that sample is cached
            f = Failure(f"{f.key}#{n}", f.stage, f.reason)
        summary.failed.append(f)
        writer.fail(f.key, f.stage, f.reason)
    log.info("preprocess: %d to do, %d cached, jobs=%d backend=%s", len(todo), summary.skipped, jobs, backend)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="preprocess", unit="sample", dynamic_ncols=True)
    failing = False
    try:
        if jobs == 1 and backend in ("local", "loky", "sequential"):
            results = (process_one(s, recipe, False, timer) for s in todo)
            _consume(results, writer, summary, bar, timer)
        else:
            import joblib

            from .parallel import backend_context, forked_results, forks_warm, parallel_results
            from .stages.align import graph_built

            fork = backend == "local" and forks_warm() and not graph_built()
            if fork:
                warm_up(recipe)  # before the pool forks its workers from this process
            elif backend == "local":
                backend = "loky"  # this process ran MediaPipe itself: its forks could not
            with contextlib.ExitStack() as stack:
                import os

                if fork or backend == "multiprocessing":
                    # OpenCV's (and numba's) idle pool threads wait on condition variables that a
                    # forked child inherits without the threads: the child's first setNumThreads
                    # then waits forever in pthread_cond_destroy. One thread here while the pool
                    # lives (this process only consumes results) means no pool to inherit.
                    stack.enter_context(_one_thread())
                if fork:  # workers forked from this warm process
                    one = functools.partial(process_one, recipe=recipe, single_thread=True, parent_pid=os.getpid())
                    results = forked_results(one, todo, jobs)
                    stack.callback(results.close)
                else:
                    stack.enter_context(backend_context(backend, jobs, scheduler))
                    if backend == "loky":  # the client helps while they start (joblib's multiprocessing
                        # backend cannot return results as they finish: it goes by groups below)
                        results = _with_parent_help(todo, recipe, jobs, os.getpid())
                    else:
                        # workers on this machine watch this process and exit when it dies
                        watch = os.getpid() if backend == "multiprocessing" else None
                        calls = (joblib.delayed(process_one)(s, recipe, True, None, watch) for s in todo)
                        results = parallel_results(calls, jobs)
                _consume(results, writer, summary, bar, timer)
    except KeyboardInterrupt:
        summary.interrupted = True
    except BaseException:
        failing = True
        raise
    finally:
        if bar is not None:
            bar.close()
        try:
            with timer.stage("write: open/close"):
                writer.close()
            if summary.interrupted:
                # Ctrl-C can land between a sample's spooling and its count: what the cache now
                # holds of this run's samples is the count (each is committed by close above)
                summary.done = len(writer.cached_keys() & {safe_text(s.key) for s in todo})
        except Exception as e:
            if not failing:
                raise
            # the first error (e.g. disk full) is the one to report; this one follows from it
            log.warning("final commit after the error failed too: %s", e)
        summary.seconds = time.monotonic() - t0
    return summary


@contextmanager
def _one_thread():
    """OpenCV, Numba and BLAS on one thread for the duration (this process shares the cores with
    workers), restored after."""
    import cv2
    import numba
    from threadpoolctl import threadpool_limits

    cv, nb = cv2.getNumThreads(), numba.get_num_threads()
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(cv)
        numba.set_num_threads(nb)


def _with_parent_help(todo, recipe: dict, jobs: int, parent_pid: int):
    """Results of every sample of ``todo``, each once: local joblib workers take samples from the
    front of the list while this process takes them from the back, until a first worker has
    finished one (their start-up: imports, models, compiled kernels). Joblib asks for more work
    from its own callback thread when a worker finishes a task, which is how the end of the
    start-up shows. If this process runs out of samples before that, it also computes the ones
    handed to the still-starting workers, and the run ends without waiting for them (a small set
    is done in this process)."""
    import collections

    import joblib

    queue = collections.deque(todo)
    lock = threading.Lock()
    main = threading.get_ident()
    started = threading.Event()
    handed: list = []  # samples given to joblib, in order
    done: set[str] = set()

    def feed():
        while True:
            if threading.get_ident() != main:
                started.set()
            with lock:
                if not queue:
                    return
                s = queue.popleft()
                handed.append(s)
            yield joblib.delayed(process_one)(s, recipe, True, None, parent_pid)

    # one task per worker ahead: what is not handed out yet, this process can take
    gen = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")(feed())
    try:
        with _one_thread():
            while not started.is_set():
                with lock:
                    s = queue.pop() if queue else next((h for h in handed if h.key not in done), None)
                if s is None:
                    break
                *out, info = process_one(s, recipe, False)
                done.add(s.key)
                yield (*out, dict(info, parent=True) if info else None)
        if len(done) == len(todo):
            return  # everything is done here; the workers still starting are stopped
        for out in gen:
            if out[1] in done:
                continue  # computed here while that worker was starting
            done.add(out[1])
            yield out
            if len(done) == len(todo):
                return
    finally:
        import warnings

        with warnings.catch_warnings():  # the workers' unfinished duplicates of samples done here
            warnings.filterwarnings("ignore", message=".*tasks which were still being processed.*")
            gen.close()


def _consume(results, writer: CacheWriter, summary: RunSummary, bar, timer) -> None:
    for status, _key, payload, info in results:
        if info is not None:
            summary.workers.append(info)
        if status == "ok":
            with timer.stage("write: spool"):
                writer.add(payload)
            summary.done += 1
        else:
            writer.fail(payload.key, payload.stage, payload.reason)
            summary.failed.append(payload)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=len(summary.failed), refresh=False)
