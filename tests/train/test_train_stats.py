"""Seeds, bootstrap intervals over subjects and paired tests, against hand computations."""

import math

import numpy as np
import pytest

from mepipe.train.stats import bootstrap_ci, paired_tests, per_subject_accuracy, seed_summary


def test_seed_summary_mean_and_sample_std():
    rows = [
        {"accuracy": 0.5, "macro_f1": 0.4, "uf1": 0.3, "uar": 0.2},
        {"accuracy": 0.7, "macro_f1": 0.6, "uf1": 0.5, "uar": 0.4},
    ]
    s = seed_summary(rows)
    assert s["uf1"]["mean"] == pytest.approx(0.4) and s["uf1"]["std"] == pytest.approx(math.sqrt(0.02))
    assert seed_summary(rows[:1])["uar"]["std"] == 0.0


def test_bootstrap_over_subjects_against_the_exact_distribution():
    # subject A always right, subject B always wrong: drawing 2 subjects with replacement gives
    # AA (p 1/4, UF1 1), AB/BA (1/2, UF1 0.5) or BB (1/4, UF1 0)
    run = {"subject": ["A", "A", "B", "B"], "true": [0, 1, 0, 1], "pred": [0, 1, 1, 0]}
    ci = bootstrap_ci([run], num_classes=2, n_boot=4000, seed=1)
    assert ci["uf1"]["estimate"] == pytest.approx(0.5) and ci["uar"]["estimate"] == pytest.approx(0.5)
    assert ci["uf1"]["low"] == pytest.approx(0.0) and ci["uf1"]["high"] == pytest.approx(1.0)
    assert ci["unit"] == "subject" and ci["subjects"] == 2
    perfect = {"subject": ["A", "B", "C"], "true": [0, 1, 2], "pred": [0, 1, 2]}
    ci = bootstrap_ci([perfect, perfect], num_classes=3, n_boot=200)
    assert ci["uf1"]["low"] == ci["uf1"]["high"] == 1.0


def test_bootstrap_averages_the_seeds_of_each_draw():
    a = {"subject": ["A", "B"], "true": [0, 1], "pred": [0, 1]}  # perfect
    b = {"subject": ["A", "B"], "true": [0, 1], "pred": [1, 0]}  # all wrong
    ci = bootstrap_ci([a, b], num_classes=2, n_boot=500)
    assert ci["uar"]["estimate"] == pytest.approx(0.5)
    assert 0.0 <= ci["uar"]["low"] <= 0.5 <= ci["uar"]["high"] <= 1.0


def test_paired_tests_against_hand_computations():
    from scipy import stats

    a = [{"accuracy": x, "macro_f1": x, "uf1": x, "uar": x} for x in (0.80, 0.82, 0.79, 0.85, 0.81)]
    b = [{"accuracy": x, "macro_f1": x, "uf1": x, "uar": x} for x in (0.75, 0.80, 0.78, 0.80, 0.76)]
    subj_a = {"s1": 1.0, "s2": 0.5, "s3": 0.75, "s4": 1.0, "s5": 0.8}
    subj_b = {"s1": 0.5, "s2": 0.5, "s3": 0.5, "s4": 0.75, "s5": 0.6}
    r = paired_tests(a, b, subj_a, subj_b)
    d = np.array([0.05, 0.02, 0.01, 0.05, 0.05])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    m = r["metrics"]["uf1"]
    assert m["difference"] == pytest.approx(d.mean()) and m["t"] == pytest.approx(t)
    assert m["p"] == pytest.approx(2 * stats.t.sf(abs(t), 4))
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert m["ci"] == pytest.approx([d.mean() - half, d.mean() + half])
    w = r["per_subject_accuracy"]
    assert w["subjects"] == 5 and w["difference"] == pytest.approx(np.mean([0.5, 0, 0.25, 0.25, 0.2]))
    assert w["p"] == pytest.approx(stats.wilcoxon([1.0, 0.5, 0.75, 1.0, 0.8], [0.5, 0.5, 0.5, 0.75, 0.6]).pvalue)
    one = paired_tests(a[:1], b[:1], subj_a, subj_b)
    assert one["metrics"]["uf1"]["p"] is None  # one seed: no paired t-test


def test_per_subject_accuracy():
    assert per_subject_accuracy(["a", "a", "b"], [0, 1, 1], [0, 0, 1]) == {"a": 0.5, "b": 1.0}
