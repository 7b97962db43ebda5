"""``mepipe compare RUN_A RUN_B``: is A better than B, on the same samples, folds and seeds?

Refuses runs that differ in their samples, their folds (which subject each sample was tested
in), their label map or their seeds, saying which. Then, for accuracy, macro-F1, UF1 and UAR:
the mean over seeds of each, the difference A − B with its 95 % confidence interval and the
paired t-test's p-value across seeds (the FaceSleuth paper's test); over subjects, the Wilcoxon
signed-rank test of the per-subject accuracies (averaged over seeds). Writes ``compare.md`` and
``compare.png`` (per-subject accuracy of A against B; per-seed UF1 of both).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .config import TrainError
from .seeds import load_runs
from .stats import HEADLINE, paired_tests, per_subject_accuracy


def _check_same(a, b, name_a: str, name_b: str) -> None:
    seeds_a = [int(r.config["seed"]) for r in a]
    seeds_b = [int(r.config["seed"]) for r in b]
    if seeds_a != seeds_b:
        raise TrainError(
            f"{name_a} and {name_b} ran other seeds ({seeds_a} vs {seeds_b}); a paired comparison needs the same seeds"
        )
    la, lb = a[0].labels, b[0].labels
    if (
        la["classes"] != lb["classes"]
        or json.dumps(la.get("map"), sort_keys=True) != json.dumps(lb.get("map"), sort_keys=True)
        or la.get("name") != lb.get("name")
    ):
        raise TrainError(
            f"{name_a} and {name_b} use other label maps ({la.get('name')} {la['classes']} vs "
            f"{lb.get('name')} {lb['classes']})"
        )
    for ra, rb in zip(a, b):
        pa, pb = ra.predictions, rb.predictions
        ka, kb = set(pa["key"]), set(pb["key"])
        if ka != kb:
            raise TrainError(
                f"{name_a} and {name_b} were tested on other samples (seed {ra.config['seed']}: "
                f"{len(ka - kb)} only in {name_a}, {len(kb - ka)} only in {name_b})"
            )
        fa = dict(zip(pa["key"], pa["fold_name"]))
        fb = dict(zip(pb["key"], pb["fold_name"]))
        moved = [k for k in fa if fa[k] != fb[k]]
        if moved:
            raise TrainError(
                f"{name_a} and {name_b} use other folds ({len(moved)} samples tested in another fold, "
                f"e.g. {moved[0]}: {fa[moved[0]]} vs {fb[moved[0]]})"
            )
        ta = dict(zip(pa["key"], pa["true_index"]))
        if any(ta[k] != t for k, t in zip(pb["key"], pb["true_index"])):
            raise TrainError(f"{name_a} and {name_b} give some samples other true classes")


def _subject_scores(runs) -> dict[str, float]:
    per = [
        per_subject_accuracy(r.predictions["subject"], r.predictions["true_index"], r.predictions["pred_index"])
        for r in runs
    ]
    return {s: float(np.mean([p[s] for p in per])) for s in per[0]}


def compare(run_a, run_b, out=None) -> dict:
    """Compare two runs (folders of ``mepipe train``); returns the tests and writes the report."""
    a, b = load_runs(run_a), load_runs(run_b)
    _check_same(a, b, str(run_a), str(run_b))
    subj_a, subj_b = _subject_scores(a), _subject_scores(b)
    res = paired_tests(
        [{k: r.metrics[k] for k in HEADLINE} for r in a],
        [{k: r.metrics[k] for k in HEADLINE} for r in b],
        subj_a,
        subj_b,
    )
    res.update(
        a=str(run_a),
        b=str(run_b),
        model_a=a[0].config["model"],
        model_b=b[0].config["model"],
        seeds=[int(r.config["seed"]) for r in a],
        samples=int(len(a[0].predictions)),
    )
    out = Path(out) if out is not None else Path(run_a).parent / "compare"
    out.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_write_text

    atomic_write_text(out / "compare.md", markdown(res))
    res["paths"] = {"markdown": str(out / "compare.md"), "plot": str(out / "compare.png")}
    _plot(a, b, subj_a, subj_b, res, out / "compare.png")
    return res


def _fmt(x, nd=3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(res: dict) -> str:
    lines = [
        f"# {res['model_a']} (A) against {res['model_b']} (B)\n",
        f"A: `{res['a']}`  \nB: `{res['b']}`  \n{res['samples']} test samples, seeds {res['seeds']}.\n",
        "| metric | A | B | A − B | 95 % CI | paired t-test p |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for k, m in res["metrics"].items():
        ci = "-" if not m["ci"] else f"[{_fmt(m['ci'][0])}, {_fmt(m['ci'][1])}]"
        lines.append(
            f"| {k} | {_fmt(m['a_mean'])} | {_fmt(m['b_mean'])} | {_fmt(m['difference'])} | {ci} | {_fmt(m['p'], 4)} |"
        )
    s = res["per_subject_accuracy"]
    ci = "-" if not s.get("ci") else f"[{_fmt(s['ci'][0])}, {_fmt(s['ci'][1])}]"
    lines += [
        "",
        f"Per subject ({s['subjects']} subjects, accuracy averaged over seeds): mean A − B "
        f"{_fmt(s['difference'])}, 95 % bootstrap CI {ci}, Wilcoxon signed-rank p {_fmt(s['p'], 4)}.",
    ]
    if res["seeds"] and len(res["seeds"]) < 2:
        lines.append(
            "\nOne seed: no paired t-test across seeds (run both with --seeds 5, as the FaceSleuth paper does)."
        )
    return "\n".join(lines) + "\n"


def _plot(a, b, subj_a, subj_b, res, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    keys = sorted(subj_a)
    ax1.scatter([subj_b[k] for k in keys], [subj_a[k] for k in keys], s=18)
    ax1.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax1.set_xlabel(f"B ({res['model_b']}) accuracy")
    ax1.set_ylabel(f"A ({res['model_a']}) accuracy")
    ax1.set_title("per subject")
    seeds = res["seeds"]
    x = np.arange(len(seeds))
    ax2.bar(x - 0.2, [r.metrics["uf1"] or 0 for r in a], 0.4, label="A")
    ax2.bar(x + 0.2, [r.metrics["uf1"] or 0 for r in b], 0.4, label="B")
    ax2.set_xticks(x, [str(s) for s in seeds])
    ax2.set_xlabel("seed")
    ax2.set_ylabel("pooled UF1")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="paired tests of two runs on the same samples, folds and seeds",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--out", default=None, help="folder for compare.md and compare.png (default: beside RUN_A)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import MepipeError

    try:
        res = compare(args.run_a, args.run_b, args.out)
    except MepipeError as e:
        print(f"mepipe compare: error: {e}", file=sys.stderr)
        return 2
    print(markdown(res))
    print(f"wrote {res['paths']['markdown']} and {res['paths']['plot']}")
    return 0
