"""One fold: build the model, train it on the fold's training samples, select the epoch, evaluate
on the test samples, write the fold's checkpoint and record atomically.

:func:`train_fold` is a top-level function of picklable arguments, so joblib (loky, dask, ray)
can ship it to worker processes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_open, atomic_write_text
from . import metrics as M
from .augment import batch_augmenter
from .config import TrainConfig, TrainError
from .protocols import Fold


@dataclass(frozen=True)
class FoldContext:
    """What a fold needs besides its config: the run's classes, resolved device and output folder."""

    classes: tuple[str, ...]
    device: str
    out: str | None = None
    fold_width: int = 2

    def stem(self, index: int) -> str:
        return f"fold-{index:0{self.fold_width}d}"


def fold_seed(seed: int, index: int) -> int:
    """The seed of fold ``index``: depends on the run seed and the fold only, never on which
    folds ran before, so a resumed or parallel run equals an uninterrupted sequential one."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


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


def build_optimizer(model, cfg: TrainConfig):
    """The optimiser of ``cfg`` over the model's trainable parameters. SOA angles always get their
    own group: learning rate ``theta_lr`` (the run's ``lr`` when the config names none) and weight
    decay ``theta_weight_decay``, 0 when not set. The angle is measured, not regularised: weight
    decay on the raw angle would pull it toward 0 deg (horizontal), so it never inherits the
    run's weight decay."""
    import torch

    tp = getattr(model, "theta_parameters", None)
    theta_ids = {id(p) for p in tp()} if callable(tp) else set()
    main: list = []
    angles: list = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (angles if id(p) in theta_ids else main).append(p)
    groups: list[dict] = [{"params": main}]
    if angles:
        groups.append(
            {
                "params": angles,
                "lr": cfg.theta_lr if cfg.theta_lr is not None else cfg.lr,
                "weight_decay": float(cfg.theta_weight_decay or 0.0),
            }
        )
    kw: dict = {"lr": cfg.lr}
    if cfg.weight_decay is not None:
        kw["weight_decay"] = cfg.weight_decay
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, **kw)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, **kw)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, **kw)
    raise TrainError(f"unknown optimizer {cfg.optimizer!r}")


def class_weights(y_train, num_classes: int, how: str):
    """``None`` for ``how = "none"``; for ``"balanced"``, n / (k * n_c) per class present (0 for absent ones)."""
    if how == "none":
        return None
    counts = np.bincount(y_train, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def batches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split positions into batches; a last batch of one sample joins the previous one
    (BatchNorm cannot train on a batch of one)."""
    parts = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2] = np.concatenate([parts[-2], parts[-1]])
        parts.pop()
    return parts


def to_device(data, idx, device):
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v[idx])).to(device) for k, v in data.items()}


def evaluate(model, data, y, idx, batch_size, device, loss_fn):
    """(loss, predictions) of the samples ``idx``."""
    import torch

    if not len(idx):
        return float("nan"), np.zeros(0, dtype=np.int64)
    model.eval()
    preds, total = [], 0.0
    with torch.no_grad():
        for b in [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]:
            logits = model(**to_device(data, b, device))
            t = torch.from_numpy(y[b]).to(device)
            total += float(loss_fn(logits, t).item()) * len(b)
            preds.append(logits.argmax(dim=1).cpu().numpy())
    return total / len(idx), np.concatenate(preds).astype(np.int64)


def train_fold(
    fold: Fold, data: dict, y: np.ndarray, cfg: TrainConfig, ctx: FoldContext, epoch_bar: bool = False
) -> dict:
    """Train one model on ``fold.train``, evaluate on ``fold.test`` and return the fold record.

    The fold runs with ``cfg.threads`` torch threads (and ``cfg.deterministic``), the same in this
    process or in a worker. When ``ctx.out`` is set, writes ``fold-XX.pt`` (state dict of the
    selected weights) and then ``folds/fold-XX.json`` (the record: predictions, history, angles),
    each atomically; the JSON file marks the fold as finished.
    """
    from .reproducible import fold_environment

    with fold_environment(cfg.threads, cfg.deterministic, ctx.device):
        return _train_fold(fold, data, y, cfg, ctx, epoch_bar)


def _train_fold(fold: Fold, data: dict, y: np.ndarray, cfg: TrainConfig, ctx: FoldContext, epoch_bar: bool) -> dict:
    import torch

    from ..models import create_model

    t0 = time.time()
    device = ctx.device
    num_classes = len(ctx.classes)
    seed = fold_seed(cfg.seed, fold.index)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = create_model(cfg.model, num_classes, **cfg.model_kwargs).to(device)
    fit = getattr(model, "fit_inputs", None)
    if callable(fit):  # input statistics (AHMSA-Net's scales) from this fold's training samples only
        fit({k: v[fold.train] for k, v in data.items()})
    opt = build_optimizer(model, cfg)
    sched = None
    if cfg.scheduler == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.scheduler_gamma)
    decay_epochs = cfg.scheduler_decay_epochs if cfg.scheduler_decay_epochs is not None else cfg.epochs
    w = class_weights(y[fold.train], num_classes, cfg.class_weighting)
    weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    eval_loss = torch.nn.CrossEntropyLoss()
    augment = batch_augmenter(cfg.augment)
    bs = cfg.batch_size
    select = cfg.select
    epochs = cfg.epochs

    hist: dict[str, list] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
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
            for b in batches(order, bs):
                inputs = to_device(data, b, device)
                if augment is not None:
                    inputs = augment(inputs, gen)
                target = torch.from_numpy(y[b]).to(device)
                logits = model(**inputs)
                loss = loss_fn(logits, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot_loss += float(loss.item()) * len(b)
                correct += int((logits.argmax(1) == target).sum().item())
            if sched is not None and epoch < decay_epochs:
                sched.step()
            hist["train_loss"].append(tot_loss / len(fold.train))
            hist["train_acc"].append(correct / len(fold.train))
            tl, tp = evaluate(model, data, y, fold.test, bs, device, eval_loss)
            hist["test_loss"].append(tl)
            hist["test_acc"].append(float((tp == y[fold.test]).mean()) if len(fold.test) else float("nan"))
            test_preds.append(tp)
            a = model_angles(model)
            if a is not None:
                for k, v in a.items():
                    angles.setdefault(k, []).append(v)
            if select == "val":
                vl, vp = evaluate(model, data, y, fold.val, bs, device, eval_loss)
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
    s = M.summarize(yt, best_pred, list(ctx.classes))
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
        "threads": int(torch.get_num_threads()),
        "seconds": round(time.time() - t0, 3),
    }
    if ctx.out is not None:
        out = Path(ctx.out)
        with atomic_open(out / f"{ctx.stem(fold.index)}.pt") as fh:
            torch.save(best_state, fh)
        atomic_write_text(out / "folds" / f"{ctx.stem(fold.index)}.json", json.dumps(record))
    return record
