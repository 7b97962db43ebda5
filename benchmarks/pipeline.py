"""``mepipe bench pipeline``: end-to-end samples/s of mepipe against a naive MER preprocessing script.

The set is synthetic (:func:`mepipe.synth.make_synthetic_set`: real faces, AU-like motion of
0.5-3 px with exact ground truth), at least 40 samples by default (5 subjects x 8, 256² frames).
Everything is measured in one process, in the same run:

- **naive reference** (:func:`naive_reference`): what a typical MER preprocessing script does,
  modelled on ``data/preprocessing.py`` of LanEinstein/DAD-Net (``process_video_clip``): read the
  onset and the apex frame, run dlib's HOG detector and the 68-point predictor on *each* of them
  (models loaded once by the caller and passed in), crop each frame by its *own* face box,
  resize, OpenCV ``DualTVL1OpticalFlow_create()`` with default parameters on the grey crops,
  optical strain with ``numpy.gradient``, one process, one ``np.save`` per sample;
- **mepipe** (:func:`run_mepipe`): :func:`mepipe.runner.preprocess` into a temporary HDF5 cache with
  the recipe's flow engine and TV-L1 parameters replaced (``numba`` + ``micro`` by default) and
  ``jobs`` loky worker processes, started fresh for every round (worker start, imports and model
  loading are part of the time, as in a CLI run);
- **stage split** (:func:`stage_split`): mepipe's chain in this process (jobs 1), once with the
  chosen engine and preset and once with ``opencv`` at OpenCV's defaults, with the stage functions
  wrapped by timers (frames, crop, align, flow, strain, compose, write), so that the reader sees
  where the time goes and how much of the end-to-end ratio is flow.

Reference and mepipe alternate over ``repeat`` rounds (ABBA order) on a machine shared with other
jobs; the load average is recorded around every measurement, and ratios are per round.
Afterwards (untimed) the flows are checked against the synthetic ground truth in the frame's
pixel grid: the cosine of the angle between flow vectors over the moving region (|gt| > 25 % of
its peak), for the reference, mepipe's OpenCV-engine flow and mepipe's chosen engine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from mepipe.parallel import cpu_count

#: labels every sample must pass through once (a refactor of the runner that bypasses a hook shows)
PER_SAMPLE = {
    "crop (dlib)": 1,
    "align: MediaPipe": 1,
    "align: similarity + warp": 1,
    "flow": 1,
    "strain": 1,
    "compose": 1,
}
STAGE_ORDER = (
    "frames",
    "crop (dlib)",
    "align: MediaPipe",
    "align: similarity + warp",
    "flow",
    "strain",
    "compose",
    "write: record",
    "write: spool",
    "write: HDF5 commit",
    "write: open/close",
    "other",
)
MOVING_FRACTION = 0.25  # ground-truth magnitude above this fraction of its peak = moving region


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


# ----------------------------------------------------------------------------- naive reference (baseline)


def _naive_face(img, detector, predictor, size: int, forehead: float = 0.3):
    """BASELINE. Detect (HOG, 1 upsampling), fit 68 landmarks, crop by this frame's own box grown
    upward by ``forehead`` x (chin - brow), resize to ``size``². Returns (crop, box) or None."""
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    faces = detector(grey, 1)
    if len(faces) == 0:
        return None
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(grey, face)
    lm = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)])
    ext = int(forehead * (lm[8, 1] - lm[19, 1]))
    x0, y0 = max(0, face.left()), max(0, face.top() - ext)
    x1, y1 = min(img.shape[1], face.right()), min(img.shape[0], face.bottom())
    if x1 <= x0 or y1 <= y0:
        return None
    return cv2.resize(img[y0:y1, x0:x1], (size, size)), (x0, y0, x1, y1)


def naive_reference(samples, out_dir, size: int = 128, times: dict | None = None) -> list[dict]:
    """BASELINE: a typical MER preprocessing script, run on ``samples`` into ``out_dir`` (one
    ``<n>.npy`` of (u, v, strain) per sample). Returns one dict per sample (key, file, onset and
    apex boxes, seconds of flow; ``None`` file when no face was found). ``times`` (if given) accumulates seconds per step.

    Choices, from peer code (LanEinstein/DAD-Net ``data/preprocessing.py``): the dlib detector and
    predictor are loaded once per run and passed to the per-frame function; every frame read is
    detected and cropped by its own box; a fresh ``DualTVL1OpticalFlow_create()`` (defaults) per
    pair; grey conversion after cropping. Strain with ``numpy.gradient`` as in STSTNet-style scripts.
    """
    import cv2
    import dlib

    from mepipe.frames import list_frame_files
    from mepipe.resources import SHAPE_PREDICTOR_68, dlib_model

    t = times if times is not None else defaultdict(float)
    c0 = time.perf_counter()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model(SHAPE_PREDICTOR_68)))
    t["models (loaded once per run)"] += time.perf_counter() - c0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for n, s in enumerate(samples):
        c0 = time.perf_counter()
        files = list_frame_files(s.source)
        onset = cv2.imread(str(files[s.onset]))
        apex = cv2.imread(str(files[s.apex]))
        c1 = time.perf_counter()
        t["frames"] += c1 - c0
        a = _naive_face(onset, detector, predictor, size)
        b = _naive_face(apex, detector, predictor, size)
        c2 = time.perf_counter()
        t["detect + crop (dlib, both frames)"] += c2 - c1
        if a is None or b is None:
            results.append({"key": s.key, "file": None, "box": None, "apex_box": None, "flow_s": 0.0})
            continue
        g1 = cv2.cvtColor(a[0], cv2.COLOR_BGR2GRAY)
        g2 = cv2.cvtColor(b[0], cv2.COLOR_BGR2GRAY)
        flow = cv2.optflow.DualTVL1OpticalFlow_create().calc(g1, g2, None)
        c3 = time.perf_counter()
        t["flow (OpenCV TV-L1 defaults)"] += c3 - c2
        u, v = flow[..., 0], flow[..., 1]
        u_y, u_x = np.gradient(u)
        v_y, v_x = np.gradient(v)
        strain = np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)
        c4 = time.perf_counter()
        t["strain (numpy.gradient)"] += c4 - c3
        path = out_dir / f"{n:05d}.npy"
        np.save(path, np.stack([u, v, strain]).astype(np.float32))
        t["write (np.save)"] += time.perf_counter() - c4
        results.append({"key": s.key, "file": str(path), "box": a[1], "apex_box": b[1], "flow_s": c3 - c2})
    return results


# ----------------------------------------------------------------------------- mepipe


def mepipe_recipe(engine: str = "numba", preset: str = "micro", base: str = "default") -> dict:
    """``base`` recipe with ``[flow] engine = engine`` and ``preset = preset`` (the preset's parameters
    replace the TV-L1 values the recipe lists: :func:`mepipe.stages.flow.engine_from_recipe`)."""
    from mepipe.recipe import load_recipe
    from mepipe.stages.flow import get_preset

    get_preset(preset)  # raises for an unknown preset
    recipe = load_recipe(base)
    recipe["flow"] = {**recipe.get("flow", {}), "engine": engine, "preset": preset}
    return recipe


def effective_flow_params(recipe: dict) -> dict:
    """The engine and TV-L1 parameters the runner builds from ``recipe['flow']``."""
    from mepipe.stages.flow import engine_from_recipe

    eng = engine_from_recipe(recipe.get("flow"))
    return {"engine": eng.name, **eng.params}


_FRESH_CLIENT = """
import json, sys, time
from mepipe.datasets import read_manifest
from mepipe.runner import preprocess
manifest, n, out, recipe_path, jobs, backend = sys.argv[1:]
samples, _ = read_manifest(manifest, dataset="synth")
recipe = json.loads(open(recipe_path, encoding="utf-8").read())
t0 = time.perf_counter()
r = preprocess(samples[:int(n)], out, recipe, jobs=int(jobs), backend=backend, overwrite=True, progress=False)
sec = time.perf_counter() - t0
print(json.dumps({"seconds": sec, "done": r.done, "workers": r.workers,
                  "failed": [f"{f.key} [{f.stage}] {f.reason}" for f in r.failed]}))
"""


def run_mepipe_fresh(manifest: Path, n: int, out: Path, recipe: dict, jobs: int, backend: str = "local") -> dict:
    """``mepipe.runner.preprocess`` in a new client process, as a CLI run: nothing is loaded, no
    worker is started; the call itself is timed (not the interpreter's start or ``import mepipe``)."""
    import subprocess
    import sys

    recipe_path = out.with_suffix(".recipe.json")
    recipe_path.write_text(json.dumps(recipe), encoding="utf-8")
    load0 = _load()
    p = subprocess.run(
        [sys.executable, "-c", _FRESH_CLIENT, str(manifest), str(n), str(out), str(recipe_path), str(jobs), backend],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if p.returncode != 0:
        raise RuntimeError(f"the fresh mepipe client failed:\n{p.stderr[-3000:]}")
    d = json.loads(p.stdout.strip().splitlines()[-1])
    workers = [w for w in d["workers"] if not w.get("parent")]
    return {
        "seconds": d["seconds"],
        "done": d["done"],
        "failed": d["failed"],
        "backend": backend,
        "samples_per_s": d["done"] / d["seconds"] if d["seconds"] > 0 else float("nan"),
        "fresh_workers": True,
        "worker_ready_s": [w["ready_s"] for w in workers],
        "workers_started_warm": [w.get("started_warm") for w in workers],
        "load_before": load0,
        "load_after": _load(),
    }


def run_mepipe_warm(samples, out: Path, recipe: dict, jobs: int) -> dict:
    """``preprocess`` in this process on loky workers already started (an untimed run first starts
    them, loads their models and compiles their kernels): the rate without any start-up."""
    from mepipe.runner import preprocess

    preprocess(samples[: 4 * jobs], out, recipe, jobs=jobs, backend="loky", overwrite=True, progress=False)
    load0 = _load()
    t0 = time.perf_counter()
    summary = preprocess(samples, out, recipe, jobs=jobs, backend="loky", overwrite=True, progress=False)
    sec = time.perf_counter() - t0
    return {
        "seconds": sec,
        "done": summary.done,
        "failed": [f"{f.key} [{f.stage}] {f.reason}" for f in summary.failed],
        "samples_per_s": summary.done / sec if sec > 0 else float("nan"),
        "fresh_workers": False,
        "backend": "loky",
        "load_before": load0,
        "load_after": _load(),
    }


def stage_split(samples, out: Path, recipe: dict) -> dict:
    """mepipe's chain in this process (jobs 1) with per-stage timers. One untimed warm-up sample
    first loads the models (dlib, MediaPipe, the flow engine's compiled kernels); its time is
    reported as ``warmup_s``. ``other`` is the chain's time outside the timed functions."""
    from mepipe.runner import compute_sample, preprocess
    from mepipe.stages.align import Aligner
    from mepipe.timing import StageTimer

    t0 = time.perf_counter()
    compute_sample(samples[0], recipe)
    warm = time.perf_counter() - t0
    timer = StageTimer()
    load0 = _load()
    t0 = time.perf_counter()
    summary = preprocess(samples, out, recipe, jobs=1, backend="loky", overwrite=True, progress=False, timer=timer)
    total = time.perf_counter() - t0
    stages = dict(timer.seconds)
    stages["other"] = max(0.0, total - sum(stages.values()))
    n = summary.done
    per_sample = dict(PER_SAMPLE)
    if Aligner(recipe.get("align")).fits_apex:
        per_sample["align: MediaPipe"] = 2  # the apex is fitted too
    missing = [
        f"{k}: {timer.calls[k]} calls for {n} samples" for k, per in per_sample.items() if timer.calls[k] != per * n
    ]
    return {
        "seconds": total,
        "done": n,
        "samples_per_s": n / total if total > 0 else float("nan"),
        "warmup_s": warm,
        "stage_seconds": stages,
        "calls": dict(timer.calls),
        "hooks_complete": not missing,
        "hook_problems": missing,
        "load_before": load0,
        "load_after": _load(),
        "failed": [f"{f.key} [{f.stage}] {f.reason}" for f in summary.failed],
    }


# ----------------------------------------------------------------------------- direction check (untimed)


def to_frame_grid(flow: np.ndarray, m: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """A flow computed in a grid mapped from the frame by the 2x3 affine ``m`` (frame -> grid),
    expressed in the frame's pixel grid and units: ``f_frame(x) = A^-1 f(m x)``; returns
    ``(flow (2,H,W), valid mask)`` (valid = ``m x`` falls inside the grid)."""
    import cv2

    h, w = shape
    m = np.asarray(m, np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    comps = [
        cv2.warpAffine(
            np.ascontiguousarray(flow[k], np.float32),
            m,
            (w, h),
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        for k in range(2)
    ]
    ones = np.ones(flow.shape[1:], np.float32)
    valid = cv2.warpAffine(ones, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    f = np.einsum("ij,jhw->ihw", np.linalg.inv(m[:, :2]), np.stack(comps))
    return f.astype(np.float32), valid


def mean_cosine(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean over ``mask`` of the cosine of the angle between the vectors of fields ``a`` and ``b``."""
    dot = (a * b).sum(0)
    na = np.sqrt((a * a).sum(0))
    nb = np.sqrt((b * b).sum(0))
    cos = dot / np.maximum(na * nb, 1e-12)
    return float(cos[mask].mean()) if mask.any() else float("nan")


def relative_epe(f: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean endpoint error over ``mask`` divided by the mean ground-truth magnitude there (zero flow = 1)."""
    e = np.sqrt(((f - gt) ** 2).sum(0))[mask].mean()
    return float(e / np.sqrt((gt**2).sum(0))[mask].mean())


def direction_check(samples, ref_results: list[dict], caches: dict[str, Path], size: int) -> dict:
    """Per sample, in the frame grid over the moving region (valid in every flow): cosine to the
    ground truth and relative EPE of the reference and of each mepipe cache, and the cosine
    between the reference and each mepipe flow. Returns per-sample rows and medians."""
    from mepipe.cache import open_cache

    handles = {name: open_cache(p) for name, p in caches.items()}
    try:
        index = {name: {k: i for i, k in enumerate(c.meta.key)} for name, c in handles.items()}
        rows = []
        for s, r in zip(samples, ref_results):
            if r["file"] is None:
                continue
            gt = np.load(Path(s.source) / "gt_flow.npy")
            shape = gt.shape[1:]
            x0, y0, x1, y1 = r["box"]
            sx, sy = size / (x1 - x0), size / (y1 - y0)
            m_ref = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])
            ref = np.load(r["file"])[:2]
            flows = {"reference": to_frame_grid(ref, m_ref, shape)}
            for name, c in handles.items():
                i = index[name].get(s.key)
                if i is None:
                    break
                rec = c.read(i, fields=["flow", "transform"])
                flows[name] = to_frame_grid(rec["flow"], rec["transform"][0], shape)
            else:
                mag = np.sqrt((gt**2).sum(0))
                mask = mag > MOVING_FRACTION * mag.max()
                for _, valid in flows.values():
                    mask &= valid
                row = {
                    "key": s.key,
                    "moving_px": int(mask.sum()),
                    "reference_same_box": tuple(r["box"]) == tuple(r["apex_box"]),
                }
                for name, (f, _) in flows.items():
                    row[f"cos_gt[{name}]"] = mean_cosine(f, gt, mask)
                    row[f"rel_epe[{name}]"] = relative_epe(f, gt, mask)
                for name in handles:
                    row[f"cos[reference,{name}]"] = mean_cosine(flows["reference"][0], flows[name][0], mask)
                rows.append(row)
    finally:
        for c in handles.values():
            c.close()
    keys = [k for k in (rows[0] if rows else {}) if k not in ("key", "moving_px", "reference_same_box")]
    same = [r for r in rows if r["reference_same_box"]]
    return {
        "moving_fraction": MOVING_FRACTION,
        "samples": rows,
        "median": {k: float(np.median([r[k] for r in rows])) for k in keys},
        "median_reference_same_box": {k: float(np.median([r[k] for r in same])) for k in keys} if same else {},
    }


# ----------------------------------------------------------------------------- driver


def _box_stats(ref_results: list[dict]) -> dict:
    """How often the reference's per-frame detection gave the apex another box than the onset, and
    what its flow cost on those samples against the others (last round)."""
    ok = [r for r in ref_results if r["file"] is not None]
    diff = [r for r in ok if tuple(r["box"]) != tuple(r["apex_box"])]
    same = [r for r in ok if tuple(r["box"]) == tuple(r["apex_box"])]

    def mean(rs):
        return float(np.mean([r["flow_s"] for r in rs])) if rs else float("nan")

    return {
        "samples": len(ok),
        "apex_box_differs": len(diff),
        "flow_s_mean_box_differs": mean(diff),
        "flow_s_mean_same_box": mean(same),
        "no_face": len(ref_results) - len(ok),
    }


def _layout(n: int) -> tuple[int, int]:
    """(subjects, samples per subject) covering ``n`` samples: 5 subjects x 8 for 40."""
    subjects = max(1, min(5, n))
    return subjects, math.ceil(n / subjects)


def precompile_kernels(recipe: dict, out: Path) -> dict:
    """Compile the numba engine's kernels into numba's on-disk cache before anything is timed, if
    they are not there: the first run after an install compiles them once (15-25 s), which no
    later run pays, so a timed round must not include it. Returns ``{"needed", "seconds"}``."""
    if recipe["flow"].get("engine") != "numba":
        return {"needed": False, "seconds": 0.0}
    from mepipe.stages.flow_numba import kernels_cached

    if kernels_cached() is not False:
        return {"needed": False, "seconds": 0.0}
    from mepipe.runner import check_run, warm_up

    t0 = time.perf_counter()
    warm_up(check_run(recipe, out, 1, "local")[0])
    return {"needed": True, "seconds": round(time.perf_counter() - t0, 2)}


def bench_pipeline(
    out=None,
    n_samples: int = 40,
    jobs: int = 2,
    engine: str = "numba",
    preset: str = "micro",
    size: int = 256,
    repeat: int = 2,
    seed: int = 0,
    split: bool = True,
    workdir=None,
    progress: bool = True,
) -> dict:
    """Run the end-to-end benchmark; returns (and writes ``pipeline.json``/``pipeline.md`` under
    ``out``) the results dict."""
    import cv2

    from mepipe.datasets import read_manifest
    from mepipe.stages.flow import get_preset, list_engines
    from mepipe.synth import make_synthetic_set

    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    if engine not in list_engines():
        raise ValueError(f"unknown flow engine {engine!r}; available: {', '.join(list_engines())}")
    get_preset(preset)  # raises for an unknown preset
    repeat, jobs = max(1, int(repeat)), max(1, int(jobs))

    def say(msg):
        if progress:
            print(msg, flush=True)

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mepipe-bench-pipeline-")
        work = Path(tmp.name)
    else:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
    try:
        subjects, per = _layout(n_samples)
        say(f"synthetic set: {subjects} subjects x {per} samples, {size}² ...")
        t0 = time.perf_counter()
        manifest = make_synthetic_set(
            work / "set", subjects=subjects, samples_per_subject=per, seed=seed, size=size, progress=False
        )
        synth_s = time.perf_counter() - t0
        samples, _ = read_manifest(manifest, dataset="synth")
        samples = samples[:n_samples]
        recipe = mepipe_recipe(engine, preset)
        ref_recipe = mepipe_recipe("opencv", "default")
        crop_size = int(recipe["align"]["size"])
        compiled = precompile_kernels(recipe, work / "precompile.h5")
        if compiled["needed"]:
            say(f"numba's kernels were not in its cache: compiled them first ({compiled['seconds']:.1f} s, untimed)")

        rounds, ref_times = [], defaultdict(float)
        ref_results = None
        for r in range(repeat):
            order = ("reference", "mepipe") if r % 2 == 0 else ("mepipe", "reference")
            row = {"round": r + 1, "order": list(order)}
            for what in order:
                if what == "reference":
                    say(f"round {r + 1}: naive reference, {len(samples)} samples, 1 process ...")
                    times = defaultdict(float)
                    ref_dir = work / "reference"
                    shutil.rmtree(ref_dir, ignore_errors=True)
                    load0 = _load()
                    t0 = time.perf_counter()
                    ref_results = naive_reference(samples, ref_dir, size=crop_size, times=times)
                    sec = time.perf_counter() - t0
                    done = sum(1 for x in ref_results if x["file"] is not None)
                    row["reference"] = {
                        "seconds": sec,
                        "done": done,
                        "samples_per_s": done / sec,
                        "load_before": load0,
                        "load_after": _load(),
                        "opencv_threads": cv2.getNumThreads(),
                        "step_seconds": dict(times),
                    }
                    for k, v in times.items():
                        ref_times[k] += v
                else:
                    say(f"round {r + 1}: mepipe {engine}/{preset}, jobs {jobs}, a fresh client ...")
                    row["mepipe"] = run_mepipe_fresh(manifest, len(samples), work / "mepipe.h5", recipe, jobs)
                    # workers already started: models loaded, kernels compiled
                    row["mepipe_warm"] = run_mepipe_warm(samples, work / "mepipe-warm.h5", recipe, jobs)
            row["ratio"] = row["mepipe"]["samples_per_s"] / row["reference"]["samples_per_s"]
            row["ratio_warm"] = row["mepipe_warm"]["samples_per_s"] / row["reference"]["samples_per_s"]
            say(
                f"  reference {row['reference']['samples_per_s']:.2f} samples/s, mepipe "
                f"{row['mepipe']['samples_per_s']:.2f} samples/s: {row['ratio']:.1f}x (warm workers "
                f"{row['mepipe_warm']['samples_per_s']:.2f} samples/s: {row['ratio_warm']:.1f}x)"
            )
            rounds.append(row)

        def summary(key):
            rates = [x[key]["samples_per_s"] for x in rounds]
            return {
                "samples_per_s": float(np.median(rates)),
                "samples_per_s_rounds": rates,
                "seconds_rounds": [x[key]["seconds"] for x in rounds],
                "done": rounds[-1][key]["done"],
            }

        result = {
            "benchmark": "pipeline",
            "samples": len(samples),
            "set": {
                "subjects": subjects,
                "samples_per_subject": per,
                "frame_size": size,
                "seed": seed,
                "synth_seconds": synth_s,
            },
            "jobs": jobs,
            "engine": engine,
            "preset": preset,
            "flow_section": recipe["flow"],
            "flow_params": effective_flow_params(recipe),
            "aligned_size": crop_size,
            "repeat": repeat,
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cpu_count": cpu_count(),
                "opencv_threads": cv2.getNumThreads(),
                "python": platform.python_version(),
            },
            "reference": {
                **summary("reference"),
                "description": "naive script: dlib on onset and apex, own box per "
                "frame, OpenCV TV-L1 defaults, numpy.gradient strain, np.save, one process",
                "step_seconds_per_sample": {k: v / (repeat * len(samples)) for k, v in ref_times.items()},
            },
            "mepipe": {
                **summary("mepipe"),
                "description": f"mepipe.runner.preprocess, {engine}/{preset}, "
                f"jobs {jobs}, a fresh client process each round (backend local: workers forked from it), HDF5 cache",
            },
            "mepipe_warm": {
                **summary("mepipe_warm"),
                "description": "in the benchmark's process on loky workers "
                "started by an untimed run first (models loaded, kernels compiled), into a new cache",
            },
            "ratio_warm": float(np.median([x["ratio_warm"] for x in rounds])),
            "reference_boxes": _box_stats(ref_results),
            "rounds": rounds,
            "ratio": float(np.median([x["ratio"] for x in rounds])),
            "ratio_rounds": [x["ratio"] for x in rounds],
            "kernels_precompiled": compiled,
        }
        caches = {}
        if split:
            result["split"] = {}
            for name, rec in ((f"{engine}/{preset}", recipe), ("opencv/default", ref_recipe)):
                if name in result["split"]:
                    continue
                say(f"stage split: mepipe {name}, in this process (jobs 1) ...")
                path = work / f"split-{name.replace('/', '-')}.h5"
                result["split"][name] = stage_split(samples, path, rec)
                caches[f"mepipe {name}"] = path
            a, b = result["split"][f"{engine}/{preset}"], result["split"]["opencv/default"]
            result["split_ratio"] = a["samples_per_s"] / b["samples_per_s"]
            fa, fb = a["stage_seconds"].get("flow", 0.0), b["stage_seconds"].get("flow", 0.0)
            result["flow_ratio_in_chain"] = fb / fa if fa > 0 else float("nan")
        else:
            caches[f"mepipe {engine}/{preset}"] = work / "mepipe.h5"
        result["direction"] = direction_check(samples, ref_results, caches, crop_size)
        result["load_end"] = _load()
        if out is not None:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "pipeline.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
            (out / "pipeline.md").write_text(markdown(result), encoding="utf-8")
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def markdown(result: dict) -> str:
    """Markdown tables of a :func:`bench_pipeline` result."""
    n = result["samples"]
    ref = result["reference"]["samples_per_s"]
    loads = [
        x[k][f]
        for x in result["rounds"]
        for k in ("reference", "mepipe", "mepipe_warm")
        for f in ("load_before", "load_after")
    ]
    lines = [
        "# Pipeline benchmark\n",
        f"{n} synthetic samples ({result['set']['subjects']} subjects x {result['set']['samples_per_subject']}, "
        f"{result['set']['frame_size']}² frames), aligned/cropped to {result['aligned_size']}²; "
        f"{result['machine']['cpu_count']} cores; 1-min load {min(loads):.1f}–{max(loads):.1f}; "
        f"{result['repeat']} rounds, median shown.\n",
        "| pipeline | samples/s | s/sample | × reference |",
        "|---|---:|---:|---:|",
        f"| naive reference (dlib per frame, OpenCV TV-L1 defaults, 1 process) | {ref:.2f} | {1 / ref:.3f} | 1.0 |",
        f"| mepipe {result['engine']}/{result['preset']}, jobs {result['jobs']} (end to end) | "
        f"{result['mepipe']['samples_per_s']:.2f} | {1 / result['mepipe']['samples_per_s']:.3f} | "
        f"**{result['ratio']:.1f}** |",
    ]
    lines.append(
        f"| mepipe {result['engine']}/{result['preset']}, jobs {result['jobs']}, workers already started "
        f"| {result['mepipe_warm']['samples_per_s']:.2f} | {1 / result['mepipe_warm']['samples_per_s']:.3f} | "
        f"{result['ratio_warm']:.1f} |"
    )
    for name, s in result.get("split", {}).items():
        lines.append(
            f"| mepipe {name}, jobs 1, in process (warm models) | {s['samples_per_s']:.2f} | "
            f"{1 / s['samples_per_s']:.3f} | {s['samples_per_s'] / ref:.1f} |"
        )
    pre = result.get("kernels_precompiled") or {}
    if pre.get("needed"):
        lines.append(
            f"\nnumba's kernels were not in its on-disk cache: they were compiled once before the rounds "
            f"({pre['seconds']:.1f} s, not timed), as the first run after an install does."
        )
    ready = [r for x in result["rounds"] for r in x["mepipe"].get("worker_ready_s", [])]
    warm = [w for x in result["rounds"] for w in x["mepipe"].get("workers_started_warm", [])]
    if ready:
        how = (
            "forked from the warmed client, so the time is their own MediaPipe graph and first sample"
            if warm and all(warm)
            else "the client computes samples meanwhile"
        )
        lines.append(
            f"\nFresh workers' start-up (from process start to their first finished sample, "
            f"{len(ready)} workers over the rounds): median {sorted(ready)[len(ready) // 2]:.2f} s, "
            f"max {max(ready):.2f} s; {how}."
        )
    lines.append(
        "\nPer round: "
        + "; ".join(
            f"{x['order'][0]} first: ref {x['reference']['samples_per_s']:.2f}, mepipe {x['mepipe']['samples_per_s']:.2f}"
            f" samples/s = {x['ratio']:.1f}x (warm workers {x['ratio_warm']:.1f}x)"
            for x in result["rounds"]
        )
        + "\n"
    )
    if "split" in result:
        names = list(result["split"])
        lines += [
            "## Where the time goes (ms per sample)\n",
            "| stage | " + " | ".join(f"mepipe {k} (jobs 1)" for k in names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for st in STAGE_ORDER:
            cells = []
            for k in names:
                s = result["split"][k]
                v = s["stage_seconds"].get(st, 0.0)
                cells.append(f"{1000 * v / s['done']:.1f} ({100 * v / s['seconds']:.0f} %)")
            lines.append(f"| {st} | " + " | ".join(cells) + " |")
        lines.append(
            "| **total** | "
            + " | ".join(f"**{1000 * result['split'][k]['seconds'] / result['split'][k]['done']:.1f}**" for k in names)
            + " |"
        )
        lines.append(
            "| write path (record + spool + commit + open/close) | "
            + " | ".join(
                f"**{1000 * sum(v for k, v in result['split'][n]['stage_seconds'].items() if k.startswith('write')) / result['split'][n]['done']:.1f}**"
                for n in names
            )
            + " |"
        )
        lines.append(
            "| warm-up (model load + 1st sample, not in total) | "
            + " | ".join(f"{1000 * result['split'][k]['warmup_s']:.0f}" for k in names)
            + " |"
        )
        lines.append(
            f"\nFlow inside the chain: opencv/default takes {result['flow_ratio_in_chain']:.1f}x the time of "
            f"{names[0]}; the whole in-process chain is {result['split_ratio']:.1f}x faster with it.\n"
        )
    b = result["reference_boxes"]
    lines += [
        "## Naive reference, ms per sample\n",
        f"Per-frame detection gave the apex a different face box than the onset on {b['apex_box_differs']} of "
        f"{b['samples']} samples; OpenCV's flow then also has to follow the crop's shift and zoom: "
        f"{1000 * b['flow_s_mean_box_differs']:.0f} ms per pair on those, {1000 * b['flow_s_mean_same_box']:.0f} ms "
        f"on the others (last round).\n",
        "| step | ms/sample |",
        "|---|---:|",
    ]
    for k, v in result["reference"]["step_seconds_per_sample"].items():
        lines.append(f"| {k} | {1000 * v:.1f} |")
    d = result["direction"]
    same = d["median_reference_same_box"]
    n_same = sum(r["reference_same_box"] for r in d["samples"])
    lines += [
        "\n## Flow against the synthetic ground truth (medians over samples; frame grid, moving region)\n",
        "cos: mean cosine of the angle between flow vectors; rel EPE: mean endpoint error / mean |gt| "
        "(zero flow scores 1).\n",
        f"| quantity | all {len(d['samples'])} samples | {n_same} samples where the reference's two boxes agree |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v:.3f} | {same.get(k, float('nan')):.3f} |" for k, v in d["median"].items()]
    return "\n".join(lines) + "\n"


def register(bench_sub) -> None:
    p = bench_sub.add_parser(
        "pipeline",
        help="end-to-end samples/s of mepipe vs a naive MER preprocessing script",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default=None, help="folder for pipeline.json and pipeline.md")
    p.add_argument("--samples", type=int, default=40, help="synthetic samples (5 subjects x N/5)")
    p.add_argument("--jobs", type=int, default=2, help="mepipe worker processes (loky)")
    p.add_argument("--engine", default="numba", help="mepipe flow engine (opencv, numba, torch)")
    p.add_argument("--preset", default="micro", help="TV-L1 preset for mepipe's engine (default, micro)")
    p.add_argument("--size", type=int, default=256, help="synthetic frame side in pixels")
    p.add_argument("--repeat", type=int, default=2, help="rounds of reference and mepipe, alternating order")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-split", action="store_true", help="skip the in-process per-stage timing")
    p.add_argument("--workdir", default=None, help="keep the synthetic set, outputs and caches here (default: temp)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_pipeline)


def _cli_pipeline(args) -> int:
    if args.samples < 1:
        raise SystemExit("--samples must be >= 1")
    result = bench_pipeline(
        out=args.out,
        n_samples=args.samples,
        jobs=args.jobs,
        engine=args.engine,
        preset=args.preset,
        size=args.size,
        repeat=args.repeat,
        seed=args.seed,
        split=not args.no_split,
        workdir=args.workdir,
        progress=not args.no_progress,
    )
    print(markdown(result))
    print(
        f"mepipe {result['engine']}/{result['preset']} jobs {result['jobs']}: {result['ratio']:.1f}x the naive "
        f"reference end to end ({result['mepipe']['samples_per_s']:.2f} vs {result['reference']['samples_per_s']:.2f} "
        f"samples/s)"
    )
    if args.out:
        print(f"wrote {Path(args.out) / 'pipeline.json'} and {Path(args.out) / 'pipeline.md'}")
    return 0


if __name__ == "__main__":  # python benchmarks/pipeline.py ... == mepipe bench pipeline ...
    import sys

    from mepipe.benchmarks import main

    sys.exit(main(["bench", "pipeline", *sys.argv[1:]]))
