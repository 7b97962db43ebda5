"""Classification metrics for micro-expression recognition, in plain numpy.

All figures are computed from a confusion matrix ``M`` (rows: true class, columns: predicted
class) of predictions **pooled over all folds**, as MEGC does. For a class ``c``:

* ``TP_c = M[c, c]``, ``FP_c = sum_r M[r, c] - TP_c``, ``FN_c = sum_k M[c, k] - TP_c``, ``N_c = TP_c + FN_c``
* ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (undefined only for a class neither true nor predicted)
* ``recall_c = TP_c / N_c``

and over the set ``K`` of classes that occur in the ground truth (``N_c > 0``):

* ``UF1 = mean_{c in K} F1_c`` (unweighted F1, MEGC)
* ``UAR = mean_{c in K} recall_c`` (unweighted average recall, MEGC)
* ``accuracy = trace(M) / sum(M)``
* ``macro-F1 = mean_{c in K ∪ P} F1_c`` where ``P`` are the classes that occur in the predictions
  (scikit-learn's ``f1_score(average="macro")``): a class that is predicted but never true adds an
  F1 of 0 here, while UF1 ignores it. On a full run the two agree; they differ on subsets (one
  dataset of a composite run, one fold) that lack a class.

A class of ``K`` that is never predicted has ``TP_c = 0`` and so ``F1_c = 0``: it is **counted**
(peers' scripts often skip it, which inflates their figures), and :func:`summarize` lists it in
``absent_from_predictions`` so the report can say so.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "confusion_matrix",
    "accuracy",
    "per_class",
    "uf1",
    "uar",
    "macro_f1",
    "summarize",
]


def _as_labels(y, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.mod(a, 1) == 0):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``M[t, p]`` = number of samples of true class ``t`` predicted as ``p`` (int64, C x C)."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if num_classes is None:
        num_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got true {t.min()}..{t.max()}, pred {p.min()}..{p.max()}"
        )
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def _check_cm(cm) -> np.ndarray:
    m = np.asarray(cm)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    return m.astype(np.int64)


def per_class(cm) -> dict[str, np.ndarray]:
    """Per-class ``tp, fp, fn, support, predicted, precision, recall, f1`` (float arrays; NaN where undefined).

    ``precision`` is NaN for a class never predicted, ``recall`` NaN for a class with no true
    sample, ``f1`` NaN only when the class is neither true nor predicted (``2TP+FP+FN = 0``).
    """
    m = _check_cm(cm)
    tp = np.diag(m).astype(float)
    support = m.sum(axis=1).astype(float)
    predicted = m.sum(axis=0).astype(float)
    fp = predicted - tp
    fn = support - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), np.nan)
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "support": support,
        "predicted": predicted,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def accuracy(cm) -> float:
    m = _check_cm(cm)
    n = m.sum()
    return float(np.trace(m) / n) if n else float("nan")


def uf1(cm) -> float:
    """Unweighted F1 over the classes present in the ground truth (absent predictions count as 0)."""
    pc = per_class(cm)
    k = pc["support"] > 0
    return float(pc["f1"][k].mean()) if k.any() else float("nan")


def uar(cm) -> float:
    """Unweighted average recall over the classes present in the ground truth."""
    pc = per_class(cm)
    k = pc["support"] > 0
    return float(pc["recall"][k].mean()) if k.any() else float("nan")


def macro_f1(cm) -> float:
    """Mean F1 over the classes present in the ground truth or in the predictions (scikit-learn's macro)."""
    pc = per_class(cm)
    k = (pc["support"] > 0) | (pc["predicted"] > 0)
    return float(pc["f1"][k].mean()) if k.any() else float("nan")


def _num(x: float):
    """JSON-friendly float (None for NaN)."""
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def summarize(y_true, y_pred, classes) -> dict:
    """All figures for one set of predictions, as a JSON-ready dict.

    ``classes`` names the class indices. The result holds ``n``, ``accuracy``, ``macro_f1``,
    ``uf1``, ``uar``, ``per_class`` (name -> support, predicted, precision, recall, f1),
    ``confusion`` (list of lists), ``classes_in_truth``, ``absent_from_predictions`` (classes of
    the ground truth that were never predicted: their F1 is counted as 0) and ``notes``.
    """
    classes = [str(c) for c in classes]
    cm = confusion_matrix(y_true, y_pred, len(classes))
    pc = per_class(cm)
    in_truth = [classes[i] for i in range(len(classes)) if pc["support"][i] > 0]
    absent = [classes[i] for i in range(len(classes)) if pc["support"][i] > 0 and pc["predicted"][i] == 0]
    notes = []
    if absent:
        notes.append("classes never predicted (F1 counted as 0 in UF1/macro-F1, recall 0 in UAR): " + ", ".join(absent))
    missing = [classes[i] for i in range(len(classes)) if pc["support"][i] == 0]
    if missing and cm.sum():
        notes.append("classes without true samples here (left out of UF1/UAR): " + ", ".join(missing))
    return {
        "n": int(cm.sum()),
        "accuracy": _num(accuracy(cm)),
        "macro_f1": _num(macro_f1(cm)),
        "uf1": _num(uf1(cm)),
        "uar": _num(uar(cm)),
        "per_class": {
            classes[i]: {
                "support": int(pc["support"][i]),
                "predicted": int(pc["predicted"][i]),
                "precision": _num(pc["precision"][i]),
                "recall": _num(pc["recall"][i]),
                "f1": _num(pc["f1"][i]),
            }
            for i in range(len(classes))
        },
        "confusion": cm.tolist(),
        "classes_in_truth": in_truth,
        "absent_from_predictions": absent,
        "notes": notes,
    }
