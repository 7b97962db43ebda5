"""Metrics against hand-computed cases and against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sk_cm

from mepipe.train import metrics as M


def test_hand_computed_case():
    # classes 0,1,2; true 4x0, 3x1, 2x2
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 2, 1, 1, 0, 2, 2]
    cm = M.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 2]]
    # TP/FP/FN: class 0 2/1/2, class 1 2/1/1, class 2 2/1/0
    # F1_0 = 4/(4+1+2) = 4/7; F1_1 = 4/(4+1+1) = 2/3; F1_2 = 4/(4+1+0) = 0.8
    assert M.uf1(cm) == pytest.approx((4 / 7 + 2 / 3 + 0.8) / 3)
    # recalls 2/4, 2/3, 2/2
    assert M.uar(cm) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert M.accuracy(cm) == pytest.approx(6 / 9)
    assert M.macro_f1(cm) == pytest.approx(M.uf1(cm))


def test_class_never_predicted_counts_as_zero_and_is_reported():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 0]  # class 2 never predicted
    s = M.summarize(y_true, y_pred, ["neg", "pos", "sur"])
    # F1: neg 2*2/(4+1+0)=0.8, pos 4/(4+1)=0.8, sur 0 -> UF1 = 1.6/3 (a skipping script would say 0.8)
    assert s["uf1"] == pytest.approx(1.6 / 3)
    assert s["uar"] == pytest.approx(2 / 3)
    assert s["per_class"]["sur"]["f1"] == 0.0
    assert s["per_class"]["sur"]["precision"] is None
    assert s["absent_from_predictions"] == ["sur"]
    assert any("sur" in n and "never predicted" in n for n in s["notes"])


def test_class_predicted_but_not_true_uf1_vs_macro_f1():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 2, 1, 1]  # class 2 has no true sample
    cm = M.confusion_matrix(y_true, y_pred, 3)
    f0, f1 = 2 * 1 / (2 + 0 + 1), 1.0
    assert M.uf1(cm) == pytest.approx((f0 + f1) / 2)  # over classes in the truth
    assert M.macro_f1(cm) == pytest.approx((f0 + f1 + 0.0) / 3)  # sklearn macro: union of labels
    assert M.uar(cm) == pytest.approx((0.5 + 1.0) / 2)


@pytest.mark.parametrize("seed", range(12))
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 6))
    n = int(rng.integers(5, 60))
    y_true = rng.integers(0, c, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, c, n))
    if seed % 3 == 0:  # a true class never predicted
        y_pred[y_pred == y_true[0]] = (y_true[0] + 1) % c
    cm = M.confusion_matrix(y_true, y_pred, c)
    assert np.array_equal(cm, sk_cm(y_true, y_pred, labels=list(range(c))))
    truth = sorted(set(y_true.tolist()))
    assert M.accuracy(cm) == pytest.approx(accuracy_score(y_true, y_pred))
    assert M.macro_f1(cm) == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert M.uf1(cm) == pytest.approx(f1_score(y_true, y_pred, labels=truth, average="macro", zero_division=0))
    assert M.uar(cm) == pytest.approx(recall_score(y_true, y_pred, labels=truth, average="macro", zero_division=0))


def test_bad_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        M.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        M.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="square"):
        M.uf1(np.zeros((2, 3)))
