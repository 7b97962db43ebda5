"""Apply a trained run to new samples: ``mepipe predict RUN (--cache C.h5 | --manifest M.csv)``.

The weights are a fold's checkpoint (``fold-XX.pt``), the mean of every fold's class probabilities
(``fold="mean"``), or the one model of a run trained on every sample (``mepipe train --protocol
all``). The input must have been computed the way the run's training caches were (the same
feature recipe: frames, crop, align, flow, strain and compose settings) and hold the model's
input fields; raw clips (a manifest) are first preprocessed with the run's own recipe. Each
sample gets the predicted class and every class probability; where a sample's emotion has a
class under the run's label map, the true class is written too and the figures are printed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from .config import TrainError

log = logging.getLogger("mepipe.train")


@dataclass
class TrainedRun:
    """What ``mepipe predict`` needs of a run folder, read from its ``results.json``."""

    out: Path
    model: str
    model_kwargs: dict
    inputs: tuple[str, ...]
    classes: list[str]
    label_map: object
    caches: list[dict]
    checkpoints: dict[int, Path]
    n_folds: int
    au_list: str = "mepipe"

    @classmethod
    def load(cls, out) -> TrainedRun:
        out = Path(out)
        p = out / "results.json"
        if not p.is_file():
            raise TrainError(f"no results.json in {out}: not a finished mepipe run folder")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            cfg = d["config"]
            classes = list(d["labels"]["classes"])
            width = max(2, len(str(int(cfg["n_folds"]) - 1)))
            ck = {i: out / f"fold-{i:0{width}d}.pt" for i in range(int(cfg["n_folds"]))}
            run = cls(
                out=out,
                model=str(cfg["model"]),
                model_kwargs=dict(cfg.get("model_kwargs") or {}),
                inputs=tuple(cfg["inputs"]),
                classes=classes,
                label_map=cfg.get("label_map"),
                caches=list(cfg["caches"]),
                checkpoints={i: q for i, q in ck.items() if q.is_file()},
                n_folds=int(cfg["n_folds"]),
                au_list=str(cfg.get("au_list", "mepipe")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TrainError(f"{p} is not a mepipe results file ({type(e).__name__}: {e})") from None
        if not run.checkpoints:
            raise TrainError(f"{out} holds no fold checkpoint (fold-XX.pt)")
        if any("feature_hash" not in c for c in run.caches):
            raise TrainError(
                f"{out} was trained by an older mepipe that did not record its caches' feature "
                f"recipe; retrain it to apply it with mepipe predict"
            )
        return run

    def folds_for(self, fold) -> list[int]:
        """The fold indices whose weights are used: ``None`` = the run's only fold, ``"mean"`` = all."""
        if fold is None:
            if self.n_folds != 1:
                raise TrainError(
                    f"{self.out} has {self.n_folds} folds: choose one with --fold INDEX, "
                    f"average them with --fold mean, or train one model on every sample "
                    f"(mepipe train --protocol all)"
                )
            fold = 0
        if fold == "mean":
            missing = sorted(set(range(self.n_folds)) - set(self.checkpoints))
            if missing:
                raise TrainError(f"{self.out}: folds {missing} have no checkpoint; finish the run first")
            return sorted(self.checkpoints)
        i = int(fold)
        if i not in self.checkpoints:
            raise TrainError(f"{self.out} has no checkpoint for fold {i} (folds with one: {sorted(self.checkpoints)})")
        return [i]

    @property
    def recipe(self) -> dict:
        """The recipe of the run's (first) training cache: how new raw clips are preprocessed."""
        return dict(self.caches[0]["recipe"])


def check_input_cache(run: TrainedRun, cache_path) -> dict:
    """Refuse a cache computed otherwise than the run's training caches, or lacking an input field;
    returns its identity."""
    from ..recipe import feature_hash, feature_recipe
    from .data import cache_identity

    ident = cache_identity(Path(cache_path))
    # only the settings that the model's input fields depend on must agree (sections_for)
    known = {feature_hash(c["recipe"], run.inputs) for c in run.caches}
    if feature_hash(ident["recipe"], run.inputs) not in known:
        mine = feature_recipe(ident["recipe"], run.inputs)
        theirs = feature_recipe(run.caches[0]["recipe"], run.inputs)
        diff = sorted(
            f"{sec}.{k}"
            for sec in mine
            for k in set(mine[sec]) | set(theirs.get(sec, {}))
            if mine[sec].get(k) != theirs.get(sec, {}).get(k)
        )
        raise TrainError(
            f"cache {cache_path} was computed with other feature settings than run {run.out}'s "
            f"training caches ({', '.join(diff) or 'recipe'} differ, and {run.model}'s inputs "
            f"{', '.join(run.inputs)} depend on them); preprocess the clips with "
            f"the run's recipe (mepipe predict --manifest does)"
        )
    missing = [f for f in run.inputs if f not in ("aus", "aus_mask") and f not in ident["fields"]]
    if missing:
        raise TrainError(f"cache {cache_path} lacks the field(s) {', '.join(missing)} that {run.model} reads")
    return ident


def preprocess_manifest(run: TrainedRun, manifest, cache_out, jobs: int = 1, progress: bool = True) -> Path:
    """Preprocess the clips of ``manifest`` into ``cache_out`` with the run's recipe."""
    from ..datasets import read_manifest
    from ..runner import preprocess

    samples, failures = read_manifest(manifest)
    summary = preprocess(samples, cache_out, run.recipe, jobs=jobs, failures=failures, progress=progress)
    log.info(summary.text())
    if summary.done + summary.skipped == 0:
        raise TrainError(f"no sample of {manifest} could be preprocessed:\n{summary.text()}")
    return Path(cache_out)


def predict(
    run_dir,
    cache=None,
    manifest=None,
    out=None,
    fold=None,
    device: str = "auto",
    batch_size: int = 64,
    label_map=None,
    cache_out=None,
    jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Predict every sample of ``cache`` (or of ``manifest``'s clips) with the run in ``run_dir``.

    Returns ``{"path": CSV path, "n": samples, "folds": [...], "metrics": dict or None}``; the CSV
    has ``key, dataset, subject, sample_id, emotion, true, pred, pred_index`` and one ``p_<class>``
    column per class (the probabilities; ``true`` is empty where the emotion has no class).
    """
    import pandas as pd
    import torch

    from ..cache import open_cache
    from ..device import resolve_device
    from ..models import create_model
    from . import metrics as M
    from .data import load_inputs
    from .labels import map_rows

    run = TrainedRun.load(run_dir)
    if (cache is None) == (manifest is None):
        raise TrainError("give exactly one of cache= (an .h5 cache) or manifest= (a CSV of raw clips)")
    if label_map is not None and json.dumps(label_map, sort_keys=True) != json.dumps(run.label_map, sort_keys=True):
        raise TrainError(
            f"label map {label_map!r} differs from the run's ({run.label_map!r}); a model predicts "
            f"the classes it was trained on: {run.classes}"
        )
    folds = run.folds_for(fold)
    if batch_size < 1:
        raise TrainError(f"batch size must be >= 1, got {batch_size}")
    dev = resolve_device(device, purpose="predict")
    out = Path(out) if out is not None else Path("predictions.csv")
    if manifest is not None:
        cache = preprocess_manifest(run, manifest, cache_out or out.with_suffix(".h5"), jobs=jobs, progress=progress)
    check_input_cache(run, cache)

    with open_cache(cache) as c:
        meta = c.meta.copy()
    table = pd.DataFrame({"cache": 0, "row": np.arange(len(meta), dtype=np.int64)})
    data = load_inputs([Path(cache)], table, run.inputs, run.au_list)
    probs = np.zeros((len(meta), len(run.classes)), dtype=np.float64)
    for i in folds:
        model = create_model(run.model, len(run.classes), **run.model_kwargs)
        try:
            model.load_state_dict(torch.load(run.checkpoints[i], map_location="cpu", weights_only=True))
        except RuntimeError as e:  # e.g. a checkpoint of an earlier version of the model
            raise TrainError(
                f"{run.checkpoints[i]} does not fit {run.model} as this mepipe builds it "
                f"({str(e).splitlines()[0]}); train the run again"
            ) from None
        model.to(dev).eval()
        with torch.no_grad():
            for s in range(0, len(meta), batch_size):
                batch = {
                    k: torch.from_numpy(np.ascontiguousarray(v[s : s + batch_size])).to(dev) for k, v in data.items()
                }
                probs[s : s + batch_size] += torch.softmax(model(**batch).float(), dim=1).cpu().numpy()
    probs /= len(folds)
    pred = probs.argmax(axis=1)

    y_true = np.full(len(meta), -1, dtype=np.int64)
    if run.label_map is not None:
        _, classes, y, _ = map_rows(meta, run.label_map)
        if list(classes) == run.classes:
            y_true = np.asarray(y, dtype=np.int64)
    else:  # the caches' own labels: emotions that are class names
        index = {c.lower(): i for i, c in enumerate(run.classes)}
        y_true = np.array([index.get(str(e).strip().lower(), -1) for e in meta["emotion"]], dtype=np.int64)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "key",
            "dataset",
            "subject",
            "sample_id",
            "emotion",
            "true",
            "pred",
            "pred_index",
            *[f"p_{c}" for c in run.classes],
        ]
    )
    for j, r in enumerate(meta.itertuples(index=False)):
        t = run.classes[y_true[j]] if y_true[j] >= 0 else ""
        w.writerow(
            [
                r.key,
                r.dataset,
                r.subject,
                r.sample_id,
                r.emotion,
                t,
                run.classes[pred[j]],
                int(pred[j]),
                *[f"{p:.6f}" for p in probs[j]],
            ]
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())
    known = y_true >= 0
    metrics = M.summarize(y_true[known], pred[known], run.classes) if known.any() else None
    return {"path": str(out), "n": int(len(meta)), "folds": folds, "metrics": metrics, "cache": str(cache)}


def register(subparsers) -> None:
    from .. import cliargs as A
    from ..device import DEVICE_HELP

    p = subparsers.add_parser(
        "predict",
        help="apply a trained run to new samples (a cache, or raw clips in a manifest)",
        description="Apply a run of `mepipe train` to the samples of a cache, or to the raw clips of a manifest "
        "(preprocessed first with the run's recipe). Writes one CSV row per sample: the predicted "
        "class and every class probability. See docs/training.md.",
    )
    p.add_argument("run", help="run folder written by mepipe train (holds results.json and fold-XX.pt)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", help="a cache (.h5) computed with the run's feature recipe")
    src.add_argument("--manifest", help="a CSV manifest of raw clips, preprocessed with the run's recipe")
    p.add_argument("--out", default="predictions.csv", help="predictions CSV (default predictions.csv)")
    p.add_argument(
        "--fold",
        default=None,
        help="fold whose weights to use (default: the run's only fold), or 'mean' to average every "
        "fold's probabilities",
    )
    p.add_argument(
        "--cache-out", default=None, help="with --manifest: where the preprocessed cache goes (default: --out with .h5)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--batch-size", type=A.positive_int, default=64)
    p.add_argument("--jobs", type=A.jobs, default=1, help="with --manifest: preprocessing workers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import MepipeError
    from .report import _f

    try:
        res = predict(
            args.run,
            cache=args.cache,
            manifest=args.manifest,
            out=args.out,
            fold=args.fold,
            device=args.device,
            batch_size=args.batch_size,
            cache_out=args.cache_out,
            jobs=args.jobs,
            progress=not args.quiet,
        )
    except MepipeError as e:
        print(f"mepipe predict: error: {e}", file=sys.stderr)
        return 2
    print(f"{res['path']}: {res['n']} samples predicted from {res['cache']} with fold(s) {res['folds']}")
    m = res["metrics"]
    if m is not None:
        print(
            f"  on the {m['n']} samples whose emotion has a class: accuracy {_f(m['accuracy'])}  "
            f"UF1 {_f(m['uf1'])}  UAR {_f(m['uar'])}"
        )
    return 0
