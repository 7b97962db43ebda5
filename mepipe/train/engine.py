"""The training loop: caches -> folds -> one model per fold -> pooled predictions -> report.

``run()`` is the whole pipeline; :func:`train_fold` trains and evaluates one fold and writes its
files atomically (so a killed run resumes at the first unfinished fold); it is a top-level
function so that joblib (loky or dask) can ship it to worker processes.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MepipeError
from . import metrics as M
from .augment import AUGMENTATIONS, check_flippable, hflip_batch
from .labels import map_rows
from .protocols import PROTOCOLS, Fold, add_validation, make_folds

log = logging.getLogger("mepipe.train")

SELECTIONS = ("final", "val", "test-best")
CLASS_WEIGHTINGS = ("none", "balanced")
BACKENDS = ("loky", "multiprocessing", "dask")

OPTIMISTIC_NOTE = (
    "OPTIMISTIC: test-best keeps, for each test fold, the epoch with the best accuracy on that "
    "test fold itself (the selection rule of published MER code). It selects on test data and "
    "overstates performance; use it only to reproduce published figures.")
SELECTION_NOTES = {
    "final": "final epoch: no model selection (the weights after the last epoch are evaluated)",
    "val": "validation: the epoch with the best UF1 on a validation split carved, subject-disjoint "
           "and stratified, from each fold's training subjects (those subjects are not trained on)",
    "test-best": OPTIMISTIC_NOTE,
}


class TrainError(MepipeError):
    """A training run cannot start or continue (bad settings, incompatible resume, ...)."""


# ----------------------------------------------------------------------------- small helpers


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    d = str(device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise TrainError(f"device {device!r} requested but torch sees no CUDA GPU "
                             f"(torch {torch.__version__}); use --device cpu or auto")
        return d
    raise TrainError(f"unknown device {device!r}; use auto, cpu or cuda")


def device_description(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        return f"{device} ({torch.cuda.get_device_name(idx)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def fold_seed(seed: int, index: int) -> int:
    """The seed of fold ``index``: depends on the run seed and the fold only, never on which
    folds ran before, so a resumed or parallel run equals an uninterrupted sequential one."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj, path: Path) -> None:
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def versions() -> dict:
    import platform
    from importlib import metadata

    from .. import __version__

    out = {"mepipe": __version__, "python": platform.python_version()}
    for dist in ("torch", "numpy", "h5py", "pandas", "joblib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def model_angles(model) -> dict[str, float] | None:
    """Learned SOA angles in degrees, ``{layer name: angle}``; ``None`` for a model without them
    (and for CVA, whose attention is fixed vertical: 90 degrees in every layer)."""
    import torch

    fn = getattr(model, "angles_deg", None)
    if not callable(fn):
        return None
    with torch.no_grad():
        vals = fn()
    if vals is None:
        return None
    if isinstance(vals, dict):
        return {str(k): float(v) for k, v in vals.items() if v is not None}
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    tp = getattr(model, "theta_parameters", None)
    learnable = bool(tp()) if callable(tp) else True
    if not learnable and all(v == 90.0 for v in vals):
        return None  # CVA: fixed vertical attention, no angle to plot
    return {f"layer {i + 1}": float(v) for i, v in enumerate(vals)}


# ----------------------------------------------------------------------------- the sample table


def build_table(cache_paths, label_map=None):
    """One row per usable sample over all caches, plus the classes and what was left out.

    Returns ``(table, classes, label_info)``. ``table`` columns: ``cache`` (index into
    ``cache_paths``), ``row`` (index in that cache), ``key``, ``dataset``, ``subject``
    (namespaced ``dataset/subject``), ``emotion``, ``y``.
    """
    import pandas as pd

    from ..cache import open_cache

    parts = []
    native = []
    for ci, p in enumerate(cache_paths):
        with open_cache(p) as c:
            meta = c.meta.copy()
            native.append(list(c.classes))
        meta["cache"] = ci
        meta["row"] = np.arange(len(meta), dtype=np.int64)
        parts.append(meta)
    if not parts:
        raise TrainError("no caches given")
    meta = pd.concat(parts, ignore_index=True)
    excluded: dict[str, int] = {}
    if label_map is None:
        classes = native[0]
        for p, cl in zip(cache_paths[1:], native[1:]):
            if cl != classes:
                raise TrainError(
                    f"classes mismatch across caches: {cache_paths[0]} has {classes}, {p} has {cl}; "
                    f"give a label map (e.g. --label-map megc2019-3class) to train on them together")
        if len(classes) < 2:
            raise TrainError(f"cache {cache_paths[0]} names fewer than two classes ({classes}); give a label map")
        y = meta["label"].to_numpy().astype(np.int64)
        bad = (y < 0) | (y >= len(classes))
        for d, e in zip(meta.loc[bad, "dataset"], meta.loc[bad, "emotion"]):
            k = f"{d}/{str(e).strip().lower() or '(no label)'}"
            excluded[k] = excluded.get(k, 0) + 1
        map_name, mapping = "native", None
    else:
        map_name, classes, y, resolved = map_rows(meta, label_map)
        y = np.asarray(y, dtype=np.int64)
        bad = y < 0
        for d, e in zip(meta.loc[bad, "dataset"], meta.loc[bad, "emotion"]):
            k = f"{d}/{str(e).strip().lower() or '(no emotion)'}"
            excluded[k] = excluded.get(k, 0) + 1
        mapping = resolved
    meta["y"] = y
    meta = meta.loc[~bad].reset_index(drop=True)
    dup = meta["key"][meta["key"].duplicated()]
    if len(dup):
        raise TrainError(f"sample key {dup.iloc[0]!r} appears in two caches; a sample may be used once")
    meta["subject"] = meta["dataset"].astype(str) + "/" + meta["subject"].astype(str)
    if len(meta) == 0:
        raise TrainError("no sample is left after the label map; check --label-map against the caches' emotions")
    info = {
        "name": map_name,
        "classes": list(classes),
        "map": mapping,
        "excluded": dict(sorted(excluded.items())),
        "excluded_total": int(sum(excluded.values())),
        "counts": {str(c): int((meta["y"] == i).sum()) for i, c in enumerate(classes)},
    }
    cols = ["cache", "row", "key", "dataset", "subject", "emotion", "y"]
    return meta[cols], list(classes), info


def load_inputs(cache_paths, table, fields) -> dict[str, np.ndarray]:
    """Model inputs of every table row, stacked: ``{field: float32 (N, ...)}`` (via ``CacheDataset``)."""
    from ..torch_dataset import CacheDataset

    out: dict[str, np.ndarray] = {}
    cache_col = table["cache"].to_numpy()
    row_col = table["row"].to_numpy()
    for f in fields:
        out[f] = None
    for ci, p in enumerate(cache_paths):
        pos = np.flatnonzero(cache_col == ci)
        if not len(pos):
            continue
        ds = CacheDataset(p, fields=tuple(fields), indices=row_col[pos])
        try:
            for j, i in enumerate(pos):
                inputs, _ = ds[j]
                for f in fields:
                    a = inputs[f].numpy()
                    if out[f] is None:
                        out[f] = np.zeros((len(table),) + a.shape, dtype=np.float32)
                    if out[f].shape[1:] != a.shape:
                        raise TrainError(f"field {f!r} has shape {a.shape} in {p} but {out[f].shape[1:]} "
                                         f"elsewhere; caches trained together need the same sizes")
                    out[f][i] = a
        finally:
            ds.close()
    return out


# ----------------------------------------------------------------------------- one fold


def _build_optimizer(model, settings):
    import torch

    name = settings["optimizer"].lower()
    lr = settings["lr"]
    wd = settings["weight_decay"]
    theta_lr = settings.get("theta_lr")
    theta_wd = settings.get("theta_weight_decay")
    tp = getattr(model, "theta_parameters", None)
    theta_ids = {id(p) for p in tp()} if callable(tp) else set()
    main, angles = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (angles if (theta_lr is not None and id(p) in theta_ids) else main).append(p)
    groups = [{"params": main}]
    if angles:
        g = {"params": angles, "lr": theta_lr}
        if theta_wd is not None:
            g["weight_decay"] = theta_wd
        groups.append(g)
    kw = {"lr": lr}
    if wd is not None:
        kw["weight_decay"] = wd
    if name == "adam":
        return torch.optim.Adam(groups, **kw)
    if name == "adamw":
        return torch.optim.AdamW(groups, **kw)
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=settings.get("momentum", 0.9), **kw)
    raise TrainError(f"unknown optimizer {name!r}; use adam, adamw or sgd")


def _class_weights(y_train, num_classes, how):
    if how == "none":
        return None
    counts = np.bincount(y_train, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def _batches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split positions into batches; a last batch of one sample joins the previous one
    (BatchNorm cannot train on a batch of one)."""
    parts = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2] = np.concatenate([parts[-2], parts[-1]])
        parts.pop()
    return parts


def _to_device(data, idx, device):
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v[idx])).to(device) for k, v in data.items()}


def _evaluate(model, data, y, idx, batch_size, device, loss_fn):
    """(loss, predictions) of the samples ``idx``."""
    import torch

    if not len(idx):
        return float("nan"), np.zeros(0, dtype=np.int64)
    model.eval()
    preds, total = [], 0.0
    with torch.no_grad():
        for b in [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]:
            logits = model(**_to_device(data, b, device))
            t = torch.from_numpy(y[b]).to(device)
            total += float(loss_fn(logits, t).item()) * len(b)
            preds.append(logits.argmax(dim=1).cpu().numpy())
    return total / len(idx), np.concatenate(preds).astype(np.int64)


def train_fold(fold: Fold, data: dict, y: np.ndarray, settings: dict, out: str | None,
               epoch_bar: bool = False) -> dict:
    """Train one model on ``fold.train``, evaluate on ``fold.test`` and return the fold record.

    When ``out`` is given, writes ``fold-XX.pt`` (state dict of the selected weights) and then
    ``folds/fold-XX.json`` (the record: predictions, history, angles), each atomically; the JSON
    file marks the fold as finished.
    """
    import torch

    from ..models import create_model

    t0 = time.time()
    device = settings["device"]
    num_classes = len(settings["classes"])
    seed = fold_seed(settings["seed"], fold.index)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_model(settings["model"], num_classes, **settings["model_kwargs"]).to(device)
    opt = _build_optimizer(model, settings)
    sched = None
    if settings.get("scheduler") == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=settings["gamma"])
    w = _class_weights(y[fold.train], num_classes, settings["class_weighting"])
    weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    eval_loss = torch.nn.CrossEntropyLoss()
    flip = settings["augment"] == "hflip"
    bs = settings["batch_size"]
    select = settings["select"]
    epochs = settings["epochs"]

    hist = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    if select == "val":
        hist.update(val_loss=[], val_acc=[], val_uf1=[])
    angles: dict[str, list[float]] = {}
    best_score, best_epoch, best_state, best_pred = -np.inf, -1, None, None
    test_preds = []

    bar = None
    if epoch_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"fold {fold.index} ({fold.name})", unit="epoch", leave=False)
    try:
        for epoch in range(epochs):
            model.train()
            order = fold.train[torch.randperm(len(fold.train), generator=gen).numpy()]
            tot_loss, correct = 0.0, 0
            for b in _batches(order, bs):
                inputs = _to_device(data, b, device)
                if flip:
                    mask = torch.rand(len(b), generator=gen) < 0.5
                    inputs = hflip_batch(inputs, mask)
                target = torch.from_numpy(y[b]).to(device)
                logits = model(**inputs)
                loss = loss_fn(logits, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot_loss += float(loss.item()) * len(b)
                correct += int((logits.argmax(1) == target).sum().item())
            if sched is not None and epoch < settings.get("decay_epochs", epochs):
                sched.step()
            hist["train_loss"].append(tot_loss / len(fold.train))
            hist["train_acc"].append(correct / len(fold.train))
            tl, tp = _evaluate(model, data, y, fold.test, bs, device, eval_loss)
            hist["test_loss"].append(tl)
            hist["test_acc"].append(float((tp == y[fold.test]).mean()))
            test_preds.append(tp)
            a = model_angles(model)
            if a is not None:
                for k, v in a.items():
                    angles.setdefault(k, []).append(v)
            if select == "val":
                vl, vp = _evaluate(model, data, y, fold.val, bs, device, eval_loss)
                vcm = M.confusion_matrix(y[fold.val], vp, num_classes)
                score = M.uf1(vcm)
                hist["val_loss"].append(vl)
                hist["val_acc"].append(M.accuracy(vcm))
                hist["val_uf1"].append(score)
            elif select == "test-best":
                score = hist["test_acc"][-1]
            else:
                score = None
            if score is not None and score > best_score:  # first maximum wins ties
                best_score, best_epoch = score, epoch
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best_pred = tp
            if bar is not None:
                bar.set_postfix(loss=f"{hist['train_loss'][-1]:.3f}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if select == "final" or best_state is None:
        best_epoch = epochs - 1
        best_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        best_pred = test_preds[-1]

    yt = y[fold.test]
    s = M.summarize(yt, best_pred, settings["classes"])
    record = {
        "index": fold.index,
        "name": fold.name,
        "sizes": fold.sizes(),
        "test": fold.test.tolist(),
        "val": fold.val.tolist(),
        "true": yt.tolist(),
        "pred": best_pred.tolist(),
        "selected_epoch": int(best_epoch),
        "metrics": {k: s[k] for k in ("n", "accuracy", "uf1", "uar", "macro_f1", "absent_from_predictions")},
        "history": hist,
        "angles": angles or None,
        "device": device,
        "seconds": round(time.time() - t0, 3),
    }
    if out is not None:
        out = Path(out)
        width = settings["fold_width"]
        atomic_torch_save(best_state, out / f"fold-{fold.index:0{width}d}.pt")
        atomic_write_text(out / "folds" / f"fold-{fold.index:0{width}d}.json", json.dumps(record))
    return record


# ----------------------------------------------------------------------------- results


@dataclass
class Results:
    """What a run produced (also written to ``out/results.json``)."""

    out: Path
    config: dict
    metrics: dict
    per_dataset: dict
    per_fold: list
    selection: dict
    device: str
    paths: dict
    labels: dict
    complete: bool
    versions: dict
    curves: dict | None = None
    angles: dict | None = None

    @property
    def uf1(self) -> float:
        return self.metrics["uf1"]

    @property
    def uar(self) -> float:
        return self.metrics["uar"]

    @property
    def optimistic(self) -> bool:
        return bool(self.selection.get("optimistic"))

    @property
    def predictions(self):
        import pandas as pd

        return pd.read_csv(self.paths["predictions"], keep_default_na=False)

    def to_dict(self) -> dict:
        return {
            "config": self.config, "versions": self.versions, "device": self.device,
            "selection": self.selection, "complete": self.complete, "labels": self.labels,
            "metrics": self.metrics, "per_dataset": self.per_dataset, "per_fold": self.per_fold,
            "paths": self.paths, "curves": self.curves, "angles": self.angles,
        }

    @classmethod
    def load(cls, out) -> "Results":
        """Read a finished run's ``results.json``."""
        p = Path(out) / "results.json"
        if not p.is_file():
            raise TrainError(f"no results.json in {out}: the run has not finished")
        d = json.loads(p.read_text(encoding="utf-8"))
        return cls(out=Path(out), config=d["config"], metrics=d["metrics"], per_dataset=d["per_dataset"],
                   per_fold=d["per_fold"], selection=d["selection"], device=d["device"], paths=d["paths"],
                   labels=d["labels"], complete=d["complete"], versions=d["versions"],
                   curves=d.get("curves"), angles=d.get("angles"))

    def table(self) -> str:
        from .report import results_table

        return results_table(self)

    def __str__(self) -> str:
        return self.table()


# ----------------------------------------------------------------------------- run


_IDENTITY_KEYS = ("caches", "model", "model_kwargs", "protocol", "epochs", "batch_size", "lr", "seed", "select",
                  "label_map", "class_weighting", "augment", "val_fraction", "holdout_fraction", "optimizer",
                  "weight_decay")


def _cache_identity(p: Path) -> dict:
    from ..cache import open_cache

    with open_cache(p) as c:
        return {"path": str(p.resolve()), "n": len(c), "recipe_hash": str(c.attrs.get("recipe_hash", "")),
                "updated": str(c.attrs.get("updated", ""))}


def _print(msg: str, progress: bool) -> None:
    log.info(msg)
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)


def run(caches, model: str, protocol: str = "loso", epochs: int | None = None, batch_size: int | None = None,
        lr: float | None = None, device: str = "auto", seed: int = 0, out=None, jobs: int = 1,
        select: str = "final", label_map=None, class_weighting: str = "none", augment: str = "none",
        model_kwargs: dict | None = None, resume: bool = True, progress: bool = True, backend: str = "loky",
        val_fraction: float = 0.2, holdout_fraction: float = 0.2, weight_decay=None, optimizer: str | None = None,
        folds=None) -> Results:
    """Train ``model`` on ``caches`` under ``protocol`` and report pooled UF1/UAR.

    ``epochs``, ``batch_size``, ``lr``, ``optimizer`` and ``weight_decay`` default to the model's
    paper settings (``mepipe.models.get_config(model)``). ``select`` is ``final`` (default),
    ``val`` or ``test-best`` (optimistic; see docs/training.md). ``folds`` (indices) trains only
    those folds (the report is then marked incomplete); a later call without it finishes the run.
    With ``resume`` (default), folds already finished in ``out`` are loaded, not retrained; the
    run's settings must equal those that started ``out``. ``jobs > 1`` trains folds in parallel
    with joblib (``backend`` loky, multiprocessing or dask; dask uses the active
    ``distributed.Client`` or starts a loopback ``LocalCluster``).
    """
    from ..models import get_config

    t_start = time.time()
    if isinstance(caches, (str, Path)):
        caches = [caches]
    cache_paths = [Path(c) for c in caches]
    if not cache_paths:
        raise TrainError("no caches given")
    protocol = str(protocol).lower()
    if protocol not in PROTOCOLS:
        raise TrainError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if select not in SELECTIONS:
        raise TrainError(f"unknown selection rule {select!r}; choose one of {', '.join(SELECTIONS)}")
    if class_weighting not in CLASS_WEIGHTINGS:
        raise TrainError(f"unknown class weighting {class_weighting!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}")
    if augment not in AUGMENTATIONS:
        raise TrainError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if backend not in BACKENDS:
        raise TrainError(f"unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    jobs = int(jobs)
    if jobs < 1:
        raise TrainError(f"jobs must be >= 1, got {jobs}")
    try:
        cfg = get_config(model)
    except KeyError as e:
        raise TrainError(str(e.args[0])) from None
    if protocol == "composite" and label_map is None:
        label_map = "megc2019-3class"
    model_kwargs = dict(model_kwargs or {})
    epochs = int(epochs if epochs is not None else cfg.epochs)
    batch_size = int(batch_size if batch_size is not None else cfg.batch_size)
    lr = float(lr if lr is not None else cfg.lr)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise TrainError(f"epochs and batch size must be >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})")
    optimizer = str(optimizer or cfg.optimizer).lower()
    if optimizer not in ("adam", "adamw", "sgd"):
        raise TrainError(f"unknown optimizer {optimizer!r}; use adam, adamw or sgd")
    weight_decay = weight_decay if weight_decay is not None else cfg.weight_decay
    dev = resolve_device(device)
    out = Path(out) if out is not None else Path("runs") / f"{model}-{protocol}"

    # -- samples, classes, folds
    ids = [_cache_identity(p) for p in cache_paths]  # raises CacheError on a missing/truncated file
    table, classes, label_info = build_table(cache_paths, label_map)
    from ..models import create_model

    try:  # the model's own config names the inputs it really uses (builder kwargs may change them)
        inputs = tuple(create_model(model, len(classes), **model_kwargs).config.inputs)
    except (TypeError, ValueError) as e:
        raise TrainError(f"cannot build model {model!r} with {model_kwargs}: {e}") from None
    if augment == "hflip":
        check_flippable(inputs)
    all_folds = make_folds(protocol, table, seed=seed,
                           holdout_fraction=holdout_fraction)
    if select == "val":
        all_folds = add_validation(all_folds, table, val_fraction, seed)
    for f in all_folds:
        if not len(f.train):
            raise TrainError(f"fold {f.name} has no training sample")
    width = max(2, len(str(len(all_folds) - 1)))
    label_spec = label_map if (label_map is None or isinstance(label_map, str)) else label_info["map"]
    config = {
        "caches": ids, "model": model, "model_kwargs": model_kwargs, "inputs": list(inputs),
        "protocol": protocol, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": int(seed),
        "select": select, "label_map": label_spec, "class_weighting": class_weighting, "augment": augment,
        "val_fraction": float(val_fraction) if select == "val" else None,
        "holdout_fraction": float(holdout_fraction) if protocol == "holdout" else None,
        "optimizer": optimizer, "weight_decay": weight_decay,
        "scheduler": cfg.extra.get("scheduler"), "scheduler_gamma": cfg.extra.get("gamma"),
        "scheduler_decay_epochs": cfg.extra.get("decay_epochs"),
        "theta_lr": cfg.extra.get("theta_lr"), "theta_weight_decay": cfg.extra.get("theta_weight_decay"),
        "defaults_source": cfg.defaults_source,
        "jobs": jobs, "backend": backend, "device_requested": device,
        "n_folds": len(all_folds),
    }
    settings = {
        "model": model, "model_kwargs": model_kwargs, "classes": classes, "seed": int(seed), "device": dev,
        "optimizer": optimizer, "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
        "epochs": epochs, "select": select, "class_weighting": class_weighting, "augment": augment,
        "scheduler": cfg.extra.get("scheduler"), "gamma": cfg.extra.get("gamma", 1.0),
        "decay_epochs": cfg.extra.get("decay_epochs", epochs), "theta_lr": cfg.extra.get("theta_lr"),
        "theta_weight_decay": cfg.extra.get("theta_weight_decay"), "fold_width": width,
    }

    # -- output folder and resume
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    ident = {k: config[k] for k in _IDENTITY_KEYS}
    ident["caches"] = [{k: c[k] for k in ("path", "n", "recipe_hash")} for c in ids]
    ident_path = out / "run.json"
    if resume and ident_path.is_file():
        old = json.loads(ident_path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(ident) if old.get(k) != json.loads(json.dumps(ident.get(k), default=str)))
        if diff:
            raise TrainError(
                f"{out} holds a run with other settings ({', '.join(diff)} differ); "
                f"use another --out, or resume=False / --no-resume to start it again")
    if not resume:
        for p in list((out / "folds").glob("fold-*.json")) + list(out.glob("fold-*.pt")):
            p.unlink()
        (out / "results.json").unlink(missing_ok=True)
    atomic_write_text(ident_path, json.dumps(ident, indent=2, default=str))

    wanted = list(range(len(all_folds))) if folds is None else sorted({int(i) for i in folds})
    bad = [i for i in wanted if not 0 <= i < len(all_folds)]
    if bad:
        raise TrainError(f"fold indices {bad} out of range; this run has {len(all_folds)} folds")
    records: dict[int, dict] = {}
    for i in range(len(all_folds)):
        p = out / "folds" / f"fold-{i:0{width}d}.json"
        if p.is_file() and (out / f"fold-{i:0{width}d}.pt").is_file():
            try:
                records[i] = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                p.unlink()  # cannot happen with atomic writes; a damaged record is retrained
    resumed = sorted(i for i in records if i in wanted)
    todo = [all_folds[i] for i in wanted if i not in records]

    _print(f"mepipe train: {model} on {len(table)} samples ({', '.join(str(p) for p in cache_paths)}), "
           f"{protocol} with {len(all_folds)} folds, device {device_description(dev)}", progress)
    if resumed:
        _print(f"mepipe train: resuming in {out}: {len(resumed)} fold(s) already finished", progress)

    # -- data and training
    if todo:
        data = load_inputs(cache_paths, table, inputs)
        y = table["y"].to_numpy().astype(np.int64)
        for rec in _run_folds(todo, data, y, settings, out, jobs, backend, progress, len(wanted), len(resumed)):
            records[rec["index"]] = rec

    from .report import finish_run

    return finish_run(out, records, all_folds, table, classes, label_info, config, dev,
                      complete=all(i in records for i in range(len(all_folds))),
                      elapsed=time.time() - t_start)


def _run_folds(todo, data, y, settings, out, jobs, backend, progress, total, done):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=done, desc="folds", unit="fold", disable=not progress)
    try:
        if jobs == 1 or len(todo) == 1:
            for f in todo:
                rec = train_fold(f, data, y, settings, str(out), epoch_bar=progress)
                bar.update(1)
                yield rec
            return
        import joblib

        client = cluster = None
        if backend == "dask":
            try:
                from distributed import Client, LocalCluster, get_client
            except ImportError:
                raise TrainError("backend 'dask' needs dask[distributed] (pip install 'mepipe[dask]')") from None
            try:
                get_client()
            except ValueError:
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
                client = Client(cluster)
        try:
            with joblib.parallel_config(backend=backend, n_jobs=jobs):
                gen = joblib.Parallel(return_as="generator_unordered")(
                    joblib.delayed(train_fold)(f, data, y, settings, str(out), False) for f in todo)
                for rec in gen:
                    bar.update(1)
                    yield rec
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()
