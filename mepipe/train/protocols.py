"""Evaluation protocols: which samples train and which test, fold by fold.

Every function works on a table (pandas DataFrame) with one row per usable sample and at least
the columns ``subject`` (already namespaced ``dataset/subject``), ``dataset`` and ``y`` (the class
index). Folds hold **positions** into that table (0..n-1).

* ``loso``: one fold per subject; the subject's samples are the test set.
* ``lodo``: one fold per dataset (FaceSleuth-R); needs at least two datasets.
* ``holdout``: one fold; a stratified, subject-disjoint split (:func:`stratified_subject_split`).
* ``composite``: MEGC 2019 CDE: LOSO over the union of several caches under a 3-class label map
  (the fold structure is LOSO's; the label map is set by :mod:`mepipe.train.labels`).
* ``all``: one fold that trains on every sample and tests on none: the model to apply to new
  samples (``mepipe predict``); it reports no test figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MepipeError

PROTOCOLS = ("loso", "lodo", "holdout", "composite", "all")


class ProtocolError(MepipeError):
    """A protocol cannot be built on the given samples."""


@dataclass
class Fold:
    index: int
    name: str  # held-out subject / dataset, or "holdout"
    train: np.ndarray  # positions
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def sizes(self) -> dict:
        return {"train": int(len(self.train)), "val": int(len(self.val)), "test": int(len(self.test))}


def _positions(mask) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask)).astype(np.int64)


def loso_folds(table) -> list[Fold]:
    subjects = sorted(table["subject"].unique())
    if len(subjects) < 2:
        raise ProtocolError(f"LOSO needs at least two subjects; the samples have {len(subjects)}")
    s = table["subject"].to_numpy()
    return [Fold(i, str(sub), _positions(s != sub), _positions(s == sub)) for i, sub in enumerate(subjects)]


def lodo_folds(table) -> list[Fold]:
    datasets = sorted(table["dataset"].unique())
    if len(datasets) < 2:
        raise ProtocolError(f"LODO needs samples of at least two datasets; got {datasets}")
    d = table["dataset"].to_numpy()
    return [Fold(i, str(ds), _positions(d != ds), _positions(d == ds)) for i, ds in enumerate(datasets)]


def stratified_subject_split(subjects, y, fraction: float, seed: int, num_classes: int | None = None):
    """Split subjects into (rest, held) so that held has about ``fraction`` of the samples with
    the same class proportions as the whole, and no subject is on both sides.

    Greedy: with ``target = fraction * class_counts``, subjects (visited in a seeded random order
    to break ties) are added one at a time to the held set, each time the one that brings the held
    set's class counts closest (L1) to ``target``, while that distance shrinks. At least one
    subject is held and at least one kept. Returns two arrays of positions.
    """
    subjects = np.asarray(subjects)
    y = np.asarray(y, dtype=np.int64)
    if not 0 < fraction < 1:
        raise ProtocolError(f"split fraction must lie in (0, 1), got {fraction}")
    uniq = np.unique(subjects)
    if len(uniq) < 2:
        raise ProtocolError(f"a subject-disjoint split needs at least two subjects; got {len(uniq)}")
    c = int(num_classes if num_classes is not None else y.max() + 1)
    rng = np.random.default_rng(seed)
    order = uniq[rng.permutation(len(uniq))]
    counts = np.stack([np.bincount(y[subjects == s], minlength=c) for s in order]).astype(float)
    target = fraction * counts.sum(axis=0)
    held = np.zeros(c)
    chosen: list[int] = []
    remaining = list(range(len(order)))
    dist = np.abs(held - target).sum()
    while len(remaining) > 1:
        cand = [np.abs(held + counts[j] - target).sum() for j in remaining]
        k = int(np.argmin(cand))  # first minimum: seeded order breaks ties
        if chosen and cand[k] >= dist:
            break
        dist = cand[k]
        held += counts[remaining[k]]
        chosen.append(remaining.pop(k))
    held_subjects = set(order[chosen].tolist())
    mask = np.isin(subjects, list(held_subjects))
    return _positions(~mask), _positions(mask)


def holdout_folds(table, fraction: float = 0.2, seed: int = 0) -> list[Fold]:
    train, test = stratified_subject_split(table["subject"].to_numpy(), table["y"].to_numpy(), fraction, seed)
    return [Fold(0, "holdout", train, test)]


def all_samples_fold(table) -> list[Fold]:
    """One fold training on every sample, with an empty test set."""
    return [Fold(0, "all", np.arange(len(table), dtype=np.int64), np.zeros(0, dtype=np.int64))]


def make_folds(protocol: str, table, seed: int = 0, holdout_fraction: float = 0.2) -> list[Fold]:
    protocol = protocol.lower()
    if protocol == "all":
        return all_samples_fold(table)
    if protocol in ("loso", "composite"):
        return loso_folds(table)
    if protocol == "lodo":
        return lodo_folds(table)
    if protocol == "holdout":
        return holdout_folds(table, holdout_fraction, seed)
    raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def add_validation(folds: list[Fold], table, fraction: float, seed: int) -> list[Fold]:
    """Carve a subject-disjoint, stratified validation set out of each fold's training subjects."""
    subj = table["subject"].to_numpy()
    y = table["y"].to_numpy()
    num_classes = int(y.max()) + 1 if len(y) else 0
    out = []
    for f in folds:
        if len(np.unique(subj[f.train])) < 2:
            raise ProtocolError(f"fold {f.name}: a validation split needs at least two training subjects")
        rest, held = stratified_subject_split(subj[f.train], y[f.train], fraction, seed + 7919 * f.index, num_classes)
        out.append(Fold(f.index, f.name, f.train[rest], f.test, f.train[held]))
    return out
