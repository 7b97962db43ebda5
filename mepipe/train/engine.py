"""The training run: caches -> sample table -> folds -> one model per fold -> pooled report.

:func:`run` checks everything first (:class:`~mepipe.train.config.TrainConfig`, the caches, the
model, the folds, a resumable output folder), then trains the folds that are not finished yet
(:func:`~mepipe.train.fold.train_fold`, in process or on a joblib backend) and pools them
(:mod:`mepipe.train.report`). Each fold's files are written atomically, so a killed run resumes
at the first unfinished fold.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..device import describe_device, resolve_device
from .config import OPTIMISTIC_NOTE, SELECTION_NOTES, TrainConfig, TrainError  # noqa: F401 (re-exported)
from .data import build_table, cache_identity, load_inputs
from .fold import FoldContext, train_fold
from .protocols import add_validation, make_folds
from .results import Results  # noqa: F401 (re-exported)

log = logging.getLogger("mepipe.train")


def _print(msg: str, progress: bool) -> None:
    """One line for the user: through tqdm (above the bars) when they are shown, else the log."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)
    else:
        log.info(msg)


def run(
    caches,
    model: str,
    protocol: str = "loso",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str = "auto",
    seed: int = 0,
    out=None,
    jobs: int = 1,
    select: str = "final",
    label_map=None,
    class_weighting: str = "none",
    augment: str = "none",
    model_kwargs: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    backend: str = "loky",
    val_fraction: float = 0.2,
    holdout_fraction: float = 0.2,
    weight_decay=None,
    optimizer: str | None = None,
    folds=None,
    drop_nonfinite: bool = False,
    composite_list=None,
    allow_partial_composite: bool = False,
    allow_missing_aus: bool = False,
    seeds=None,
    threads: int = 1,
    deterministic: bool = False,
    au_list: str = "mepipe",
):
    """Train ``model`` on ``caches`` under ``protocol`` and report pooled UF1/UAR.

    ``epochs``, ``batch_size``, ``lr``, ``optimizer`` and ``weight_decay`` default to the model's
    paper settings (``mepipe.models.get_config(model)``). ``select`` is ``final`` (default),
    ``val`` or ``test-best`` (optimistic; see docs/training.md). ``folds`` (indices) trains only
    those folds (the report is then marked incomplete); a later call without it finishes the run.
    With ``resume`` (default), folds already finished in ``out`` are loaded, not retrained; the
    run's settings must equal those that started ``out``. ``jobs > 1`` trains folds in parallel
    with joblib (``backend`` loky, multiprocessing, threading, dask or ray; dask uses the active
    ``distributed.Client`` or starts a loopback ``LocalCluster``).

    ``seeds`` (a count, or a list of seeds) runs the whole protocol once per seed into
    ``out/seed-<s>/`` and returns a :class:`~mepipe.train.seeds.SeedResults` (mean ± std, bootstrap
    intervals over subjects). ``threads`` is the torch thread count of every fold, in this process
    or in a worker, so that a result does not depend on ``jobs`` or the backend;
    ``deterministic`` asks torch for deterministic algorithms (see docs/training.md).
    """
    cfg = TrainConfig.create(
        model,
        protocol=protocol,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        seed=seed,
        select=select,
        label_map=label_map,
        class_weighting=class_weighting,
        augment=augment,
        model_kwargs=model_kwargs,
        val_fraction=val_fraction,
        holdout_fraction=holdout_fraction,
        device=device,
        jobs=jobs,
        backend=backend,
        drop_nonfinite=drop_nonfinite,
        composite_list=composite_list,
        allow_partial_composite=allow_partial_composite,
        allow_missing_aus=allow_missing_aus,
        threads=threads,
        deterministic=deterministic,
        au_list=au_list,
    )
    if seeds is None:
        return run_config(caches, cfg, out=out, resume=resume, progress=progress, folds=folds)
    return run_seeds(caches, cfg, seeds, out=out, resume=resume, progress=progress, folds=folds)


def run_seeds(caches, cfg: TrainConfig, seeds, out=None, resume: bool = True, progress: bool = True, folds=None):
    """:func:`run_config` once per seed into ``out/seed-<s>/``, then the summary over seeds."""
    from .seeds import parse_seeds, seed_dir, summarize_seeds

    seeds = parse_seeds(seeds)
    out = Path(out) if out is not None else Path("runs") / f"{cfg.model}-{cfg.protocol}"
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} is a file; a run's outputs go into a folder")
    runs = []
    for i, s in enumerate(seeds):
        _print(f"mepipe train: seed {s} ({i + 1} of {len(seeds)})", progress)
        runs.append(
            run_config(caches, cfg.replace(seed=s), out=seed_dir(out, s), resume=resume, progress=progress, folds=folds)
        )
    res = summarize_seeds(out, runs)
    return res


def run_config(caches, cfg: TrainConfig, out=None, resume: bool = True, progress: bool = True, folds=None) -> Results:
    """:func:`run` with a ready :class:`TrainConfig`."""
    from ..device import DeviceError
    from ..models import create_model
    from .augment import AugmentError, check_augment

    t_start = time.time()
    if isinstance(caches, (str, Path)):
        caches = [caches]
    cache_paths = [Path(c) for c in caches]
    if not cache_paths:
        raise TrainError("no caches given")
    try:
        dev = resolve_device(cfg.device, purpose="train", log_level=logging.DEBUG)  # the start line names it
    except DeviceError as e:
        raise TrainError(str(e)) from None
    out = Path(out) if out is not None else Path("runs") / f"{cfg.model}-{cfg.protocol}"
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} is a file; a run's outputs go into a folder")

    # -- samples, classes, model inputs, folds
    ids = [cache_identity(p) for p in cache_paths]  # raises CacheError on a missing/truncated file
    table, classes, label_info = build_table(cache_paths, cfg)
    try:  # the model's own config names the inputs it really uses (builder kwargs may change them)
        inputs = tuple(create_model(cfg.model, len(classes), **cfg.model_kwargs).config.inputs)
    except (TypeError, ValueError) as e:
        raise TrainError(f"cannot build model {cfg.model!r} with {cfg.model_kwargs}: {e}") from None
    try:
        check_augment(cfg.augment, inputs)
    except AugmentError as e:
        raise TrainError(str(e)) from None
    _check_aus(table, inputs, cfg)
    data = load_inputs(cache_paths, table, inputs, cfg.au_list)
    table, data, dropped = _finite_rows(table, data, cfg.drop_nonfinite)
    all_folds = make_folds(cfg.protocol, table, seed=cfg.seed, holdout_fraction=cfg.holdout_fraction or 0.2)
    if cfg.select == "val":
        all_folds = add_validation(all_folds, table, cfg.val_fraction or 0.2, cfg.seed)
    for f in all_folds:
        if not len(f.train):
            raise TrainError(f"fold {f.name} has no training sample")
    ctx = FoldContext(classes=tuple(classes), device=dev, out=str(out), fold_width=max(2, len(str(len(all_folds) - 1))))
    label_spec = (
        label_info["name"]
        if cfg.label_map is None
        else cfg.label_map
        if isinstance(cfg.label_map, str)
        else label_info["map"]
    )
    config = {
        **cfg.to_dict(),
        "label_map": label_spec,
        "caches": ids,
        "inputs": list(inputs),
        "n_folds": len(all_folds),
        "dropped_nonfinite": dropped,
    }

    wanted = list(range(len(all_folds))) if folds is None else sorted({int(i) for i in folds})
    bad = [i for i in wanted if not 0 <= i < len(all_folds)]
    if bad or not wanted:
        raise TrainError(
            f"fold indices {bad or folds} out of range; this run has {len(all_folds)} folds (0-{len(all_folds) - 1})"
        )

    # -- output folder and resume
    records = _prepare_out(out, run_identity(cfg, label_spec, ids, table, dev), len(all_folds), ctx, resume)
    resumed = sorted(i for i in records if i in wanted)
    todo = [all_folds[i] for i in wanted if i not in records]

    _print(
        f"mepipe train: {cfg.model} on {len(table)} samples ({', '.join(str(p) for p in cache_paths)}), "
        f"{cfg.protocol} with {len(all_folds)} folds, device {describe_device(dev)}",
        progress,
    )
    if label_info.get("composite"):
        from ..labels import composite_table

        comp = label_info["composite"]
        _print(
            composite_table(comp)
            + (
                ""
                if comp["matches_reference"]
                else "\nPARTIAL composite (--allow-partial-composite): not the MEGC 2019 set"
            ),
            progress,
        )
    if resumed:
        _print(f"mepipe train: resuming in {out}: {len(resumed)} fold(s) already finished", progress)

    # -- data and training
    if todo:
        y = table["y"].to_numpy().astype(np.int64)
        for rec in _run_folds(todo, data, y, cfg, ctx, progress, len(wanted), len(resumed)):
            records[rec["index"]] = rec

    from .report import finish_run

    return finish_run(
        out,
        records,
        all_folds,
        table,
        classes,
        label_info,
        config,
        dev,
        complete=all(i in records for i in range(len(all_folds))),
        elapsed=time.time() - t_start,
    )


def _finite_rows(table, data: dict, drop: bool):
    """``(table, data, dropped keys)`` without the samples whose inputs hold NaN or inf; without
    ``drop`` such samples stop the run, naming them."""
    ok = np.ones(len(table), dtype=bool)
    for v in data.values():
        ok &= np.isfinite(v.reshape(len(v), -1)).all(axis=1)
    if ok.all():
        return table, data, []
    bad = table["key"].to_numpy()[~ok].tolist()
    if not drop:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise TrainError(
            f"{len(bad)} sample(s) have NaN or inf in their model inputs: {shown}; rebuild those "
            f"samples, or leave them out with --drop-nonfinite (recorded in results.json)"
        )
    log.warning("left out %d sample(s) with NaN/inf inputs: %s", len(bad), ", ".join(bad))
    keep = np.flatnonzero(ok)
    return table.iloc[keep].reset_index(drop=True), {k: v[keep] for k, v in data.items()}, bad


def _check_aus(table, inputs, cfg: TrainConfig) -> None:
    """An AU model on samples whose dataset annotates no AUs (SMIC) would read their zero vector as
    'no AU active', and in a composite or LODO run recognise the dataset by it: refused unless
    ``allow_missing_aus``. A model that also reads ``aus_mask`` (FaceSleuth with ``au_mask=True``)
    is told which vectors are unknown; one that does not is warned about."""
    if "aus" not in inputs:
        return
    missing = table["aus_known"].to_numpy() == 0
    if not missing.any():
        return
    ds = sorted(set(table["dataset"][missing]))
    if not cfg.allow_missing_aus:
        raise TrainError(
            f"{cfg.model} reads the AU vector, but {', '.join(ds)} annotate no AUs ({int(missing.sum())} "
            f"samples): their vector is unknown, not 'no AU active'. Use a model without AUs, or "
            f"--allow-missing-aus (with --model-kwargs '{{\"au_mask\": true}}' the model is told which "
            f"vectors are unknown)"
        )
    if "aus_mask" not in inputs:
        log.warning(
            "%s reads the AU vector of %d samples of %s that annotate no AUs as 'no AU active'; "
            "--model-kwargs '{\"au_mask\": true}' gives the model the mask bit",
            cfg.model,
            int(missing.sum()),
            ", ".join(ds),
        )


def run_identity(cfg: TrainConfig, label_spec, ids, table, device: str) -> dict:
    """What a resumed run must share with the run that started its folder: the settings, each
    cache's content (its committed stamp, and the keys and classes after the label map), the
    device, the thread count and the mepipe version."""
    import hashlib

    from .. import __version__

    caches = []
    for ci, c in enumerate(ids):
        rows = table[table["cache"] == ci]
        h = hashlib.sha256("\n".join(f"{k}\t{y}" for k, y in sorted(zip(rows["key"], rows["y"]))).encode())
        caches.append(
            {
                "path": c["path"],
                "n": c["n"],
                "recipe_hash": c["recipe_hash"],
                "commit_id": c.get("commit_id", ""),
                "samples": int(len(rows)),
                "labels_sha256": h.hexdigest(),
            }
        )
    ident = {**cfg.identity(), "label_map": label_spec, "caches": caches, "device": device, "mepipe": __version__}
    return json.loads(json.dumps(ident, default=str))


def _prepare_out(out: Path, ident: dict, n_folds: int, ctx: FoldContext, resume: bool) -> dict[int, dict]:
    """Create the run folder, check (or clear) what it holds, write ``run.json``; returns the
    records of the folds already finished there."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    ident_path = out / "run.json"
    if resume and ident_path.is_file():
        old = json.loads(ident_path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(ident) if old.get(k) != ident.get(k))
        if diff:
            detail = ""
            if "caches" in diff:
                changed = [
                    f"{c['path']} ({', '.join(k for k in c if (o or {}).get(k) != c[k])})"
                    for c, o in zip(ident["caches"], old.get("caches") or [None] * len(ident["caches"]))
                    if o != c
                ]
                detail = f"; cache content changed: {'; '.join(changed)}" if changed else ""
            raise TrainError(
                f"{out} holds a run on other data or settings ({', '.join(diff)} differ{detail}); "
                f"use another --out, or resume=False / --no-resume to start it again"
            )
    if not resume:
        for p in list((out / "folds").glob("fold-*.json")) + list(out.glob("fold-*.pt")):
            p.unlink()
        (out / "results.json").unlink(missing_ok=True)
    atomic_write_text(ident_path, json.dumps(ident, indent=2))
    records: dict[int, dict] = {}
    for i in range(n_folds):
        p = out / "folds" / f"{ctx.stem(i)}.json"
        if p.is_file() and (out / f"{ctx.stem(i)}.pt").is_file():
            try:
                records[i] = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                p.unlink()  # cannot happen with atomic writes; a damaged record is retrained
    return records


def _run_folds(todo, data, y, cfg: TrainConfig, ctx: FoldContext, progress: bool, total: int, done: int):
    """Yield each fold's record as it finishes (in process, or on the config's joblib backend)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=done, desc="folds", unit="fold", disable=not progress)
    try:
        if cfg.jobs == 1 or len(todo) == 1:
            for f in todo:
                rec = train_fold(f, data, y, cfg, ctx, epoch_bar=progress)
                bar.update(1)
                yield rec
            return
        import joblib

        from ..parallel import BackendError, backend_context, parallel_results

        try:
            with backend_context(cfg.backend, cfg.jobs):
                calls = (joblib.delayed(train_fold)(f, data, y, cfg, ctx, False) for f in todo)
                for rec in parallel_results(calls, cfg.jobs):
                    bar.update(1)
                    yield rec
        except BackendError as e:
            raise TrainError(str(e)) from None
    finally:
        bar.close()
