"""Several seeds of one run: ``mepipe train ... --seeds 5``.

The whole protocol runs once per seed into ``out/seed-<s>/`` (each a complete, resumable run
folder: a killed multi-seed run resumes at its first unfinished fold of its first unfinished
seed). ``out/results.json`` then gathers them: one row per seed (``runs``), the mean and standard
deviation of accuracy, macro-F1, UF1 and UAR (``summary``), and 95 % bootstrap intervals of the
pooled UF1 and UAR that resample subjects (``bootstrap``; each draw averages the seeds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .config import TrainError
from .results import Results
from .stats import HEADLINE, bootstrap_ci, seed_summary


def parse_seeds(spec) -> list[int]:
    """``5`` -> seeds 0..4; ``"0,3,7"`` or a list -> those seeds (distinct, kept in order)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise TrainError(f"--seeds N needs N >= 1, got {spec}")
        return list(range(spec))
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if len(parts) == 1 and "," not in spec:
            try:
                return parse_seeds(int(parts[0]))
            except ValueError:
                raise TrainError(f"--seeds takes a count or a list like 0,1,2; got {spec!r}") from None
        try:
            spec = [int(p) for p in parts]
        except ValueError:
            raise TrainError(f"--seeds takes a count or a list like 0,1,2; got {spec!r}") from None
    seeds = list(dict.fromkeys(int(s) for s in spec))
    if not seeds:
        raise TrainError("--seeds gives no seed")
    return seeds


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


@dataclass
class SeedResults:
    """A multi-seed run: the per-seed :class:`Results` and their summary."""

    out: Path
    runs: list[Results]
    summary: dict
    bootstrap: dict | None
    per_dataset: dict

    @property
    def seeds(self) -> list[int]:
        return [int(r.config["seed"]) for r in self.runs]

    @property
    def complete(self) -> bool:
        return all(r.complete for r in self.runs)

    def to_dict(self) -> dict:
        first = self.runs[0]
        config = {k: v for k, v in first.config.items() if k not in ("seed", "elapsed_seconds")}
        return {
            "kind": "seeds",
            "seeds": self.seeds,
            "config": config,
            "labels": first.labels,
            "selection": first.selection,
            "complete": self.complete,
            "runs": [
                {
                    "seed": int(r.config["seed"]),
                    "out": str(r.out),
                    "complete": r.complete,
                    "metrics": {k: r.metrics[k] for k in HEADLINE},
                    "per_dataset": r.per_dataset,
                }
                for r in self.runs
            ],
            "summary": self.summary,
            "bootstrap": self.bootstrap,
            "per_dataset": self.per_dataset,
        }

    def table(self) -> str:
        from .report import _f

        first = self.runs[0]
        c = first.config
        s = self.summary
        lines = [
            f"{c['model']} · {c['protocol']} · {len(self.runs)} seeds ({', '.join(map(str, self.seeds))}) · "
            f"selection {first.selection['rule']}" + (" (OPTIMISTIC)" if first.selection.get("optimistic") else ""),
            "  " + "  ".join(f"{k.replace('_', '-')} {_pm(s[k])}" for k in HEADLINE) + "   (mean ± std over seeds)",
        ]
        if self.bootstrap:
            b = self.bootstrap
            lines.append(
                f"  95 % bootstrap over {b['subjects']} subjects: UF1 [{_f(b['uf1']['low'])}, "
                f"{_f(b['uf1']['high'])}]  UAR [{_f(b['uar']['low'])}, {_f(b['uar']['high'])}]"
            )
        for d, v in self.per_dataset.items():
            lines.append(f"    {d:<12} UF1 {_pm(v['uf1'])}  UAR {_pm(v['uar'])}")
        for r in self.runs:
            m = r.metrics
            lines.append(
                f"  seed {r.config['seed']}: accuracy {_f(m['accuracy'])}  UF1 {_f(m['uf1'])}  "
                f"UAR {_f(m['uar'])}" + ("" if r.complete else "  (INCOMPLETE)")
            )
        lines.append(f"  outputs: {self.out}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _pm(v: dict) -> str:
    if v.get("mean") is None:
        return "-"
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


def summarize_seeds(out: Path, runs: list[Results], n_boot: int = 2000) -> SeedResults:
    """Gather per-seed results: summary, bootstrap over subjects, per-dataset summaries; writes
    ``out/results.json``."""
    from ..atomic import atomic_write_text
    from .report import _clean

    rows = [{k: r.metrics[k] for k in HEADLINE} for r in runs]
    summary = seed_summary(rows)
    boot = None
    preds = [r.predictions for r in runs]
    if all(len(p) for p in preds):
        key_order = sorted(preds[0]["key"])
        aligned = [p.set_index("key").loc[key_order] for p in preds]
        boot = bootstrap_ci(
            [
                {"subject": a["subject"].tolist(), "true": a["true_index"].tolist(), "pred": a["pred_index"].tolist()}
                for a in aligned
            ],
            num_classes=len(runs[0].labels["classes"]),
            n_boot=n_boot,
        )
    per_dataset = {}
    for d in runs[0].per_dataset:
        per_dataset[d] = seed_summary([{k: r.per_dataset.get(d, {}).get(k) for k in HEADLINE} for r in runs])
    res = SeedResults(out=Path(out), runs=runs, summary=summary, bootstrap=boot, per_dataset=per_dataset)
    atomic_write_text(
        Path(out) / "results.json", json.dumps(_clean(res.to_dict()), indent=2, default=str, allow_nan=False)
    )
    return res


def load_runs(out) -> list[Results]:
    """The per-seed :class:`Results` of a run folder: one for a single-seed run, one per seed of a
    multi-seed run (in seed order)."""
    out = Path(out)
    p = out / "results.json"
    if not p.is_file():
        raise TrainError(f"no results.json in {out}: not a finished mepipe run")
    d = json.loads(p.read_text(encoding="utf-8"))
    if d.get("kind") == "seeds":
        return [Results.load(r["out"]) for r in d["runs"]]
    return [Results.load(out)]
