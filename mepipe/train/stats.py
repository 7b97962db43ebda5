"""Statistics of results people publish: the spread over seeds, bootstrap confidence intervals
that resample subjects (the unit of LOSO), and paired tests between two runs.

* :func:`seed_summary`: mean and standard deviation over seeds of each headline metric;
* :func:`bootstrap_ci`: a 95 % percentile interval of the pooled UF1 and UAR, resampling subjects
  with replacement (every sample of a drawn subject comes along, so the subjects' own correlation
  is kept); with several seeds each bootstrap draw averages the seeds' pooled figures;
* :func:`paired_tests`: a paired t-test across seeds (the FaceSleuth paper's test) and a Wilcoxon
  signed-rank test over per-subject scores, with the mean difference and its confidence interval.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M

HEADLINE = ("accuracy", "macro_f1", "uf1", "uar")


def seed_summary(rows: list[dict]) -> dict:
    """``{metric: {"mean", "std", "values"}}`` over per-seed metric rows (sample std, ddof 1; 0
    for one seed)."""
    out = {}
    for k in HEADLINE:
        vals = np.array([np.nan if r.get(k) is None else r[k] for r in rows], dtype=float)
        std = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else 0.0
        out[k] = {
            "mean": float(np.nanmean(vals)) if np.isfinite(vals).any() else None,
            "std": std,
            "values": [None if not np.isfinite(v) else float(v) for v in vals],
        }
    return out


def _pooled(y_true, y_pred, num_classes: int) -> tuple[float, float]:
    cm = M.confusion_matrix(y_true, y_pred, num_classes)
    return M.uf1(cm), M.uar(cm)


def bootstrap_ci(runs: list[dict], num_classes: int, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile confidence intervals of the pooled UF1 and UAR, resampling subjects.

    ``runs``: one ``{"subject": [...], "true": [...], "pred": [...]}`` per seed, over the same
    samples. Each draw picks as many subjects as there are, with replacement, pools every sample
    of the picked subjects (a subject picked twice counts twice) and averages the seeds' UF1 and
    UAR. Returns ``{"uf1": {"low", "high", "estimate"}, "uar": {...}, "n_boot", "level",
    "unit": "subject"}``.
    """
    if not runs:
        raise ValueError("bootstrap_ci needs at least one run")
    subjects = np.asarray(runs[0]["subject"], dtype=object)
    uniq = np.array(sorted(set(subjects)), dtype=object)
    rows_of = {s: np.flatnonzero(subjects == s) for s in uniq}
    trues = [np.asarray(r["true"], dtype=np.int64) for r in runs]
    preds = [np.asarray(r["pred"], dtype=np.int64) for r in runs]
    est = np.mean([_pooled(t, p, num_classes) for t, p in zip(trues, preds)], axis=0)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, 2))
    for b in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([rows_of[uniq[i]] for i in pick])
        draws[b] = np.mean([_pooled(t[idx], p[idx], num_classes) for t, p in zip(trues, preds)], axis=0)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = {"n_boot": int(n_boot), "level": float(level), "unit": "subject", "subjects": int(len(uniq))}
    for j, k in enumerate(("uf1", "uar")):
        out[k] = {
            "estimate": float(est[j]),
            "low": float(np.nanpercentile(draws[:, j], lo)),
            "high": float(np.nanpercentile(draws[:, j], hi)),
        }
    return out


def per_subject_accuracy(subject, true, pred) -> dict[str, float]:
    """Accuracy of each subject's test samples (LOSO: one fold each)."""
    subject = np.asarray(subject, dtype=object)
    ok = np.asarray(true) == np.asarray(pred)
    return {str(s): float(ok[subject == s].mean()) for s in sorted(set(subject))}


def paired_tests(
    seed_a: list[dict], seed_b: list[dict], subj_a: dict[str, float], subj_b: dict[str, float], level: float = 0.95
) -> dict:
    """Run A against run B on the same samples, folds and seeds.

    ``seed_a``/``seed_b``: per-seed metric rows in the same seed order; ``subj_a``/``subj_b``:
    per-subject scores (averaged over seeds). For each headline metric: the mean difference A − B
    over seeds, a t-based confidence interval of it and the paired t-test's p-value (scipy
    ``ttest_rel``; needs two or more seeds). Over subjects: the Wilcoxon signed-rank test (scipy
    ``wilcoxon``) of the per-subject scores, the mean difference and a percentile bootstrap
    interval of it.
    """
    from scipy import stats

    out: dict = {"seeds": len(seed_a), "metrics": {}}
    for k in HEADLINE:
        a = np.array([r[k] for r in seed_a], dtype=float)
        b = np.array([r[k] for r in seed_b], dtype=float)
        d = a - b
        row = {"a_mean": float(a.mean()), "b_mean": float(b.mean()), "difference": float(d.mean())}
        if len(d) >= 2 and np.isfinite(d).all():
            se = float(d.std(ddof=1) / np.sqrt(len(d)))
            t = float(stats.t.ppf((1 + level) / 2, len(d) - 1))
            row["ci"] = [row["difference"] - t * se, row["difference"] + t * se]
            if se > 0:
                res = stats.ttest_rel(a, b)
                row["t"], row["p"] = float(res.statistic), float(res.pvalue)
            else:
                row["t"], row["p"] = None, 1.0 if row["difference"] == 0 else 0.0
        else:
            row["ci"], row["t"], row["p"] = None, None, None
        out["metrics"][k] = row
    keys = sorted(set(subj_a) & set(subj_b))
    da = np.array([subj_a[k] for k in keys])
    db = np.array([subj_b[k] for k in keys])
    diff = da - db
    sub = {"subjects": len(keys), "difference": float(diff.mean()) if len(keys) else None}
    if len(keys) and np.any(diff != 0):
        w = stats.wilcoxon(da, db)
        sub["statistic"], sub["p"] = float(w.statistic), float(w.pvalue)
    else:
        sub["statistic"], sub["p"] = None, 1.0 if len(keys) else None
    rng = np.random.default_rng(0)
    if len(keys):
        boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
        sub["ci"] = [
            float(np.percentile(boots, 100 * (1 - level) / 2)),
            float(np.percentile(boots, 100 * (1 + level) / 2)),
        ]
    out["per_subject_accuracy"] = sub
    return out
