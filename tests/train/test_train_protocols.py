"""Fold splits checked against their definitions."""

import numpy as np
import pandas as pd
import pytest

from mepipe.train.protocols import (
    ProtocolError,
    add_validation,
    holdout_folds,
    lodo_folds,
    loso_folds,
    make_folds,
    stratified_subject_split,
)


def _table(seed=0, n_subjects=12, datasets=("a", "b")):
    rng = np.random.default_rng(seed)
    rows = []
    for d in datasets:
        for s in range(n_subjects):
            for _ in range(int(rng.integers(2, 9))):
                rows.append({"dataset": d, "subject": f"{d}/s{s}", "y": int(rng.choice(3, p=[0.5, 0.3, 0.2]))})
    return pd.DataFrame(rows)


def _check_partition(table, f):
    n = len(table)
    tr, te, va = set(f.train.tolist()), set(f.test.tolist()), set(f.val.tolist())
    assert not (tr & te) and not (tr & va) and not (te & va)
    assert tr | te | va == set(range(n))
    subj = table["subject"].to_numpy()
    assert not (set(subj[f.train]) & set(subj[f.test]))
    assert not (set(subj[f.val]) & set(subj[f.test])) and not (set(subj[f.val]) & set(subj[f.train]))


def test_loso_each_subject_held_out_once():
    t = _table()
    folds = loso_folds(t)
    assert [f.name for f in folds] == sorted(t["subject"].unique())
    held = np.concatenate([f.test for f in folds])
    assert sorted(held.tolist()) == list(range(len(t)))  # every sample tested exactly once
    for f in folds:
        _check_partition(t, f)
        assert set(t["subject"].to_numpy()[f.test]) == {f.name}


def test_subjects_with_same_id_in_two_datasets_are_two_folds():
    t = _table(datasets=("a", "b"), n_subjects=2)
    assert len(loso_folds(t)) == 4


def test_lodo_each_dataset_held_out_once():
    t = _table()
    folds = lodo_folds(t)
    assert [f.name for f in folds] == ["a", "b"]
    for f in folds:
        _check_partition(t, f)
        assert set(t["dataset"].to_numpy()[f.test]) == {f.name}
        assert f.name not in set(t["dataset"].to_numpy()[f.train])
    with pytest.raises(ProtocolError, match="two datasets"):
        lodo_folds(t[t["dataset"] == "a"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_is_stratified_and_subject_disjoint(seed):
    t = _table(seed, n_subjects=25)
    (f,) = holdout_folds(t, fraction=0.25, seed=seed)
    _check_partition(t, f)
    frac = len(f.test) / len(t)
    assert 0.15 < frac < 0.35
    y = t["y"].to_numpy()
    p_all = np.bincount(y, minlength=3) / len(y)
    p_test = np.bincount(y[f.test], minlength=3) / len(f.test)
    assert np.abs(p_all - p_test).max() < 0.1
    # the greedy split lands within a few samples of the target class counts
    target = 0.25 * np.bincount(y, minlength=3)
    greedy = np.abs(np.bincount(y[f.test], minlength=3) - target).sum()
    assert greedy <= 4


def test_split_is_reproducible_and_seed_dependent():
    t = _table(3, n_subjects=30)
    a = stratified_subject_split(t["subject"], t["y"], 0.2, seed=5)
    b = stratified_subject_split(t["subject"], t["y"], 0.2, seed=5)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    others = [stratified_subject_split(t["subject"], t["y"], 0.2, seed=s)[1] for s in range(6, 12)]
    assert any(not np.array_equal(a[1], o) for o in others)


def test_validation_is_carved_from_training_subjects():
    t = _table(4)
    folds = add_validation(loso_folds(t), t, 0.2, seed=0)
    base = loso_folds(t)
    for f, b in zip(folds, base):
        _check_partition(t, f)
        assert np.array_equal(f.test, b.test)
        assert len(f.val) > 0
        assert set(f.val.tolist()) | set(f.train.tolist()) == set(b.train.tolist())


def test_unknown_protocol_and_single_subject():
    t = _table()
    with pytest.raises(ProtocolError, match="unknown protocol"):
        make_folds("kfold", t)
    with pytest.raises(ProtocolError, match="two subjects"):
        loso_folds(t[t["subject"] == "a/s0"])
