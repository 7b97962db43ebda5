"""``mepipe bench flow``: the flow engines' error and speed against OpenCV's TV-L1 at its defaults.

The flow benchmark set is made of real faces: the photographs shipped in scikit-image and
matplotlib (:func:`mepipe.resources.packaged_faces`) and, when the folder exists, the stills and
video frames of ``../shared/data/faces`` next to the repository. Each face is cropped around the
dlib face box (1.3 x the box, square), scaled to each size (128², 256² by default), warped with a
random smooth field of known displacement (peak 0.5-3 px, :mod:`mepipe.warp`) and both frames get
independent sensor noise. For every engine and preset it records mean endpoint error (EPE), EPE
in the moving region (|gt| > 0.1 px), milliseconds per pair (one pair at a time, as a script calls
``compute``) and pairs/s (``compute_batch`` over the whole set: the numba engine spreads pairs over
the cores). OpenCV with its default parameters, measured in the same run, is the reference.

Run as ``mepipe bench flow`` or ``python benchmarks/flow.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from mepipe.parallel import cpu_count

#: the grid of ``--sweep`` (numba engine; OpenCV's defaults for the other parameters). A first,
#: wider sweep (nscales 1-5 x warps 1,2,3,5 x medianFiltering 1,5) showed median filtering
#: lowering EPE at no cost and more than 2 warps never helping at these motions; this grid then
#: adds the iteration budget (stopping threshold epsilon, innerIterations).
SWEEP_GRID = {
    "nscales": (2, 3, 5),
    "warps": (1, 2),
    "medianFiltering": (5,),
    "epsilon": (0.01, 0.02, 0.04),
    "innerIterations": (10, 30),
}
MOVING = 0.1  # px: ground-truth magnitude above which a pixel counts as moving


def shared_faces_dir() -> Path:
    """``../shared/data/faces`` relative to the repository holding this package (may not exist)."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


def _face_images(include_shared: bool = True, video_frames: int = 4) -> list[tuple[str, np.ndarray]]:
    """(name, grey uint8 image) of every benchmark source image."""
    import cv2

    from mepipe.resources import packaged_faces

    out = []
    for p in packaged_faces():
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            out.append((p.name, img))
    folder = shared_faces_dir()
    if include_shared and folder.is_dir():
        for p in sorted(folder.glob("*.jpg")):
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if img is not None:
                out.append((p.name, img))
        video = folder / "single_face.mp4"
        if video.is_file() and video_frames > 0:
            cap = cv2.VideoCapture(str(video))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            for idx in np.linspace(0, max(n - 1, 0), video_frames).astype(int):
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
                ok, frame = cap.read()
                if ok:
                    out.append((f"{video.name}#{idx}", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
            cap.release()
    return out


def face_crops(include_shared: bool = True, video_frames: int = 4) -> list[tuple[str, np.ndarray]]:
    """Square grey crops around the largest dlib face of each benchmark image (1.3 x the face
    box, clipped to the image); images where dlib finds no face are left out."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    crops = []
    for name, img in _face_images(include_shared, video_frames):
        dets = detector(img, 1)
        if len(dets) == 0:
            continue
        d = max(dets, key=lambda r: r.width() * r.height())
        cx, cy = (d.left() + d.right()) / 2, (d.top() + d.bottom()) / 2
        side = 1.3 * max(d.width(), d.height())
        h, w = img.shape
        side = int(min(side, h, w))
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        crops.append((name, img[y0 : y0 + side, x0 : x0 + side]))
    if not crops:
        raise RuntimeError("no face found in the benchmark images")
    return crops


def make_pairs(crops, size: int, n_pairs: int, seed: int = 0, amplitude=(0.5, 3.0), noise: float = 1.0) -> dict:
    """``n_pairs`` warped pairs at ``size``²: ``prev``/``next`` uint8 (N,S,S), ``gt`` float32 (N,2,S,S).

    Pair i uses crop ``i % len(crops)``, a random smooth field (4 Gaussian bumps inside the
    central 60 %) scaled to a peak uniform in ``amplitude`` px, ``next`` rendered so that
    ``prev(x) = next(x + gt(x))``, then Gaussian noise of ``noise`` grey levels on each frame.
    """
    import cv2

    from mepipe.warp import random_smooth_field, warp_forward

    rng = np.random.default_rng(seed)
    prev, nxt, gt, names, amps = [], [], [], [], []
    for i in range(n_pairs):
        name, crop = crops[i % len(crops)]
        interp = cv2.INTER_AREA if crop.shape[0] >= size else cv2.INTER_CUBIC
        img = cv2.resize(crop, (size, size), interpolation=interp)
        amp = float(rng.uniform(*amplitude))
        d = random_smooth_field(img.shape, amp, rng)
        b = warp_forward(img.astype(np.float32), d)
        a = img.astype(np.float32)
        if noise > 0:
            a = a + rng.normal(0, noise, a.shape)
            b = b + rng.normal(0, noise, b.shape)
        prev.append(np.clip(np.rint(a), 0, 255).astype(np.uint8))
        nxt.append(np.clip(np.rint(b), 0, 255).astype(np.uint8))
        gt.append(d)
        names.append(name)
        amps.append(amp)
    return {"prev": np.stack(prev), "next": np.stack(nxt), "gt": np.stack(gt), "names": names, "amplitude": amps}


def epe_stats(flows: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(mean EPE over all pixels, mean EPE over moving pixels |gt| > 0.1 px), averaged over pairs."""
    err = np.sqrt(((flows.astype(np.float64) - gt) ** 2).sum(1))
    moving = np.sqrt((gt.astype(np.float64) ** 2).sum(1)) > MOVING
    per_pair_all = err.mean(axis=(1, 2))
    per_pair_mov = np.array([e[m].mean() if m.any() else 0.0 for e, m in zip(err, moving)])
    return float(per_pair_all.mean()), float(per_pair_mov.mean())


def measure(
    engine_name: str,
    params: dict,
    pairs: dict,
    device: str | None = None,
    progress: bool = True,
    label: str = "",
    repeat: int = 1,
) -> dict:
    """Run one engine with ``params`` on ``pairs``: accuracy, ms per pair (one call per pair, after
    one warm-up call) and pairs/s of ``compute_batch`` over all pairs (for ``opencv``, whose batch
    is a loop of single calls, the per-pair loop itself). With ``repeat`` > 1 each timing is the
    best of ``repeat`` runs (the least disturbed by other processes on a shared machine)."""
    from tqdm import tqdm

    from mepipe.stages.flow import get_engine

    kw = dict(params)
    if device is not None and engine_name == "torch":
        kw["device"] = device
    eng = get_engine(engine_name, **kw)
    prev, nxt = pairs["prev"], pairs["next"]
    n = len(prev)
    eng.compute(prev[0], nxt[0])  # warm-up: Numba compilation / cache load, torch init
    single = np.empty((n, 2) + prev.shape[1:], dtype=np.float32)
    t_single = t_batch = float("inf")
    for _ in range(max(1, int(repeat))):
        t0 = time.perf_counter()
        for i in tqdm(range(n), desc=f"{label} single", disable=not progress, leave=False):
            single[i] = eng.compute(prev[i], nxt[i])
        t_single = min(t_single, time.perf_counter() - t0)
        if engine_name == "opencv":
            batch, t_batch = single, t_single
        else:
            t0 = time.perf_counter()
            batch = eng.compute_batch(prev, nxt)
            t_batch = min(t_batch, time.perf_counter() - t0)
    epe, epe_moving = epe_stats(batch, pairs["gt"])
    return {
        "engine": engine_name,
        "epe": epe,
        "epe_moving": epe_moving,
        "ms_per_pair": 1000.0 * t_single / n,
        "pairs_per_s": n / t_batch,
        "batch_vs_single_max_abs": float(np.abs(batch - single).max()),
        "pairs": n,
    }


def _preset_params(name: str) -> dict:
    from mepipe.stages.flow_numba import get_preset

    return get_preset(name)


def sweep(pairs_by_size: dict, progress: bool = True) -> list[dict]:
    """Mean EPE and time of the numba engine over :data:`SWEEP_GRID` (OpenCV defaults otherwise)."""
    import itertools

    from tqdm import tqdm

    rows = []
    keys = list(SWEEP_GRID)
    grid = [dict(zip(keys, values)) for values in itertools.product(*(SWEEP_GRID[k] for k in keys))]
    for size, pairs in pairs_by_size.items():
        for params in tqdm(grid, desc=f"sweep {size}²", disable=not progress):
            r = measure("numba", params, pairs, progress=False)
            r.update(size=size, params=params)
            rows.append(r)
    return rows


def choose_presets(sweep_rows: list[dict], reference: dict) -> dict:
    """Presets from a sweep. ``reference[size]`` is OpenCV-defaults' mean EPE at that size.

    ``micro``: the grid point with the least total ms per pair (summed over sizes) whose mean EPE
    is at most the reference at every size (None when no grid point qualifies).
    """
    by_params: dict[tuple, dict] = {}
    for r in sweep_rows:
        key = tuple(sorted(r["params"].items()))
        by_params.setdefault(key, {})[r["size"]] = r
    sizes = sorted(reference)
    best = None
    for key, per in by_params.items():
        if any(s not in per for s in sizes):
            continue
        if all(per[s]["epe"] <= reference[s] for s in sizes):
            t = sum(per[s]["ms_per_pair"] for s in sizes)
            if best is None or t < best[0]:
                best = (t, dict(key))
    return {"micro": best[1] if best else None}


def markdown_table(rows: list[dict], ref_key=("opencv", "default")) -> str:
    """Markdown table of benchmark rows, with ratios against OpenCV defaults at the same size."""
    ref = {r["size"]: r for r in rows if (r["engine"], r["preset"]) == ref_key}
    lines = [
        "| size | engine | preset | mean EPE (px) | EPE moving (px) | ms/pair (1 call) | pairs/s (batch) | × OpenCV defaults (pairs/s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = ref.get(r["size"])
        ratio = r["pairs_per_s"] / base["pairs_per_s"] if base else float("nan")
        lines.append(
            f"| {r['size']} | {r['engine']} | {r['preset']} | {r['epe']:.4f} | {r['epe_moving']:.4f} | "
            f"{r['ms_per_pair']:.1f} | {r['pairs_per_s']:.1f} | {ratio:.1f} |"
        )
    return "\n".join(lines) + "\n"


def sweep_table(rows: list[dict]) -> str:
    keys = list(SWEEP_GRID)
    lines = [
        "| size | " + " | ".join(keys) + " | mean EPE (px) | EPE moving (px) | ms/pair |",
        "|---:|" + "---:|" * len(keys) + "---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["size"], r["ms_per_pair"])):
        p = r["params"]
        lines.append(
            f"| {r['size']} | " + " | ".join(str(p[k]) for k in keys) + f" | {r['epe']:.4f} | "
            f"{r['epe_moving']:.4f} | {r['ms_per_pair']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def bench_flow(
    out=None,
    sizes=(128, 256),
    n_pairs: int = 20,
    engines=("opencv", "numba"),
    presets=("default", "micro"),
    seed: int = 0,
    noise: float = 1.0,
    device: str | None = None,
    do_sweep: bool = False,
    include_shared: bool = True,
    progress: bool = True,
    repeat: int = 1,
) -> dict:
    """Run the flow benchmark; returns (and writes under ``out``) the results dict."""
    import cv2
    import numba

    from mepipe.stages.flow import list_engines

    for e in engines:
        if e not in list_engines():
            raise ValueError(f"unknown flow engine {e!r}; available: {', '.join(list_engines())}")
    for p in presets:
        _preset_params(p)  # raises for an unknown preset
    crops = face_crops(include_shared)
    pairs_by_size = {int(s): make_pairs(crops, int(s), n_pairs, seed=seed + int(s), noise=noise) for s in sizes}
    rows = []
    jobs = [("opencv", "default")] + [(e, p) for e in engines for p in presets if (e, p) != ("opencv", "default")]
    for size, pairs in pairs_by_size.items():
        for engine, preset in jobs:
            label = f"{size}² {engine}/{preset}"
            if progress:
                print(f"  {label} ...", flush=True)
            r = measure(
                engine, _preset_params(preset), pairs, device=device, progress=progress, label=label, repeat=repeat
            )
            r.update(size=size, preset=preset, params=_preset_params(preset))
            rows.append(r)
    result = {
        "benchmark": "flow",
        "sizes": [int(s) for s in sizes],
        "pairs_per_size": n_pairs,
        "repeat": repeat,
        "faces": [name for name, _ in crops],
        "noise": noise,
        "amplitude_px": [0.5, 3.0],
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "opencv_threads": cv2.getNumThreads(),
        },
        "rows": rows,
    }
    if do_sweep:
        srows = sweep(pairs_by_size, progress)
        ref = {r["size"]: r["epe"] for r in rows if (r["engine"], r["preset"]) == ("opencv", "default")}
        result["sweep"] = srows
        result["sweep_choice"] = choose_presets(srows, ref)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "flow.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        md = "# Flow benchmark\n\n" + markdown_table(rows)
        if do_sweep:
            md += "\n## numba sweep\n\n" + sweep_table(result["sweep"])
            md += f"\nchosen presets: `{json.dumps(result['sweep_choice'])}`\n"
        (out / "flow.md").write_text(md, encoding="utf-8")
    return result


def ratios(result: dict) -> list[str]:
    """One line per (size, engine, preset): pairs/s and EPE relative to OpenCV defaults."""
    rows = result["rows"]
    ref = {r["size"]: r for r in rows if (r["engine"], r["preset"]) == ("opencv", "default")}
    lines = []
    for r in rows:
        b = ref[r["size"]]
        lines.append(
            f"{r['size']}² {r['engine']:>6}/{r['preset']:<10} {r['pairs_per_s'] / b['pairs_per_s']:6.1f}x "
            f"pairs/s vs OpenCV defaults; EPE {r['epe']:.4f} vs {b['epe']:.4f} px"
        )
    return lines


def register(bench_sub) -> None:
    p = bench_sub.add_parser(
        "flow",
        help="flow engines: EPE and speed on warped real faces vs OpenCV defaults",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default=None, help="folder for flow.json and flow.md")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--pairs", type=int, default=20, help="pairs per size")
    p.add_argument("--engines", nargs="+", default=["opencv", "numba"], help="engines (opencv, numba, torch)")
    p.add_argument("--presets", nargs="+", default=["default", "micro"])
    p.add_argument("--device", default=None, help="torch engine device: cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeat", type=int, default=1, help="time each engine REPEAT times, keep the best (shared machines)"
    )
    p.add_argument("--noise", type=float, default=1.0, help="sensor noise sigma in grey levels")
    p.add_argument(
        "--sweep", action="store_true", help="also sweep nscales x warps x medianFiltering (numba) and choose presets"
    )
    p.add_argument("--no-shared", action="store_true", help="only the package-shipped faces")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cli_flow)


def _cli_flow(args) -> int:
    if args.pairs < 1:
        raise SystemExit("--pairs must be >= 1")
    result = bench_flow(
        out=args.out,
        sizes=args.sizes,
        n_pairs=args.pairs,
        engines=args.engines,
        presets=args.presets,
        seed=args.seed,
        noise=args.noise,
        device=args.device,
        do_sweep=args.sweep,
        include_shared=not args.no_shared,
        progress=not args.no_progress,
        repeat=args.repeat,
    )
    print(markdown_table(result["rows"]))
    for line in ratios(result):
        print(line)
    if "sweep_choice" in result:
        print("presets chosen by the sweep:", json.dumps(result["sweep_choice"]))
    if args.out:
        print(f"wrote {Path(args.out) / 'flow.json'} and {Path(args.out) / 'flow.md'}")
    return 0


if __name__ == "__main__":  # python benchmarks/flow.py ... == mepipe bench flow ...
    import sys

    from mepipe.benchmarks import main

    sys.exit(main(["bench", "flow", *sys.argv[1:]]))
