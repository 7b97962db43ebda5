"""Run outputs: pooled metrics, predictions CSV, results.json, plots and printed tables."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from . import metrics as M


def _fold_name(i: int, width: int) -> str:
    return f"fold-{i:0{width}d}"


def _mean_curves(records: list[dict]) -> dict[str, list[float]]:
    """Per-epoch mean over folds of each history series (NaN-aware)."""
    keys = []
    for r in records:
        for k in r["history"]:
            if k not in keys:
                keys.append(k)
    out = {}
    for k in keys:
        series = [r["history"][k] for r in records if r["history"].get(k)]
        if not series:
            continue
        n = min(len(s) for s in series)
        arr = np.array([[np.nan if v is None else v for v in s[:n]] for s in series], dtype=float)
        with np.errstate(all="ignore"):
            m = np.nanmean(arr, axis=0) if np.isfinite(arr).any() else arr[0]
        out[k.replace("_", " ")] = [float(v) for v in m]
    return out


def _mean_angles(records: list[dict]) -> dict[str, list[float]] | None:
    """Per layer and epoch, the mean over folds of the SOA angles as axes (:func:`mepipe.angles.axis_mean`:
    folds at 2° and 178° average to 0°, not 90°)."""
    from ..angles import axis_mean

    per = [r["angles"] for r in records if r.get("angles")]
    if not per:
        return None
    out = {}
    for layer in per[0]:
        series = [a[layer] for a in per if layer in a]
        n = min(len(s) for s in series)
        out[layer] = [axis_mean([s[i] for s in series]) for i in range(n)]
    return out


def finish_run(
    out: Path, records: dict, folds, table, classes, label_info, config, device, complete: bool, elapsed: float
):
    """Pool the finished folds' predictions, write every output file and return :class:`Results`."""
    from ..atomic import atomic_write_text
    from ..versions import library_versions
    from .results import Results

    out = Path(out)
    width = max(2, len(str(len(folds) - 1)))
    done = [records[i] for i in sorted(records)]
    keys = table["key"].to_numpy()
    datasets = table["dataset"].to_numpy()
    subjects = table["subject"].to_numpy()
    rows = []
    for r in done:
        for pos, t, p in zip(r["test"], r["true"], r["pred"]):
            rows.append((keys[pos], datasets[pos], subjects[pos], r["index"], classes[t], classes[p], r["name"], t, p))
    y_true = np.array([x[7] for x in rows], dtype=np.int64)
    y_pred = np.array([x[8] for x in rows], dtype=np.int64)

    # predictions CSV
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "dataset", "subject", "fold", "true", "pred", "fold_name", "true_index", "pred_index"])
    w.writerows(rows)
    pred_path = out / "predictions.csv"
    atomic_write_text(pred_path, buf.getvalue())

    metrics = M.summarize(y_true, y_pred, classes)
    bootstrap = None
    if complete and config["protocol"] != "all" and len(rows) and len({x[2] for x in rows}) > 1:
        from .stats import bootstrap_ci

        bootstrap = bootstrap_ci(
            [{"subject": [x[2] for x in rows], "true": y_true.tolist(), "pred": y_pred.tolist()}],
            num_classes=len(classes),
        )
    ds_col = np.array([x[1] for x in rows], dtype=object)
    per_dataset = {}
    if len(set(table["dataset"])) > 1:
        for d in sorted(set(ds_col)):
            m = ds_col == d
            s = M.summarize(y_true[m], y_pred[m], classes)
            per_dataset[d] = {
                k: s[k] for k in ("n", "accuracy", "uf1", "uar", "macro_f1", "absent_from_predictions", "notes")
            }
    per_fold = []
    for r in done:
        per_fold.append(
            {
                "index": r["index"],
                "name": r["name"],
                **r["sizes"],
                "selected_epoch": r["selected_epoch"],
                **{k: r["metrics"][k] for k in ("accuracy", "uf1", "uar", "macro_f1", "absent_from_predictions")},
                "device": r["device"],
                "seconds": r["seconds"],
                "checkpoint": str(out / f"{_fold_name(r['index'], width)}.pt"),
            }
        )

    from .config import OPTIMISTIC_NOTE, SELECTION_NOTES

    select = config["select"]
    selection = {"rule": select, "optimistic": select == "test-best", "note": SELECTION_NOTES[select]}
    if select == "test-best":
        metrics["notes"].insert(0, OPTIMISTIC_NOTE)
    if config["protocol"] == "all":
        metrics["notes"].insert(
            0,
            "trained on every sample (--protocol all): no test set, no test figures; "
            "apply the model to new samples with `mepipe predict`",
        )
    if not complete:
        missing = [f.index for f in folds if f.index not in records]
        metrics["notes"].insert(
            0,
            f"INCOMPLETE: {len(missing)} of {len(folds)} folds not trained yet (figures pool the finished folds only)",
        )

    # plots
    paths = {
        "results": str(out / "results.json"),
        "predictions": str(pred_path),
        "checkpoints": [p["checkpoint"] for p in per_fold],
    }
    from .. import viz

    title = f"{config['model']} · {config['protocol']} · UF1 {_f(metrics['uf1'])} UAR {_f(metrics['uar'])}"
    if select == "test-best":
        title += " (optimistic: test-best)"
    cm = np.asarray(metrics["confusion"])
    paths["confusion"] = str(out / "confusion.png")
    viz.plot_confusion(cm, classes, paths["confusion"], title=title)
    curves = _mean_curves(done)
    if curves:
        paths["curves"] = str(out / "curves.png")
        viz.plot_curves(curves, paths["curves"])
    angles = _mean_angles(done)
    if angles:
        paths["angles"] = str(out / "angles.png")
        from ..angles import is_learned, start_deg

        start = start_deg(config["model"], config.get("model_kwargs"))
        how = "learned, started at" if is_learned(config["model"]) else "fixed at"
        viz.plot_angles(
            angles,
            paths["angles"],
            title=f"{config['model']}: SOA angle per layer, axis mean over folds ({how} {start:g}°)"
            if start is not None
            else None,
        )
    res = Results(
        out=out,
        config={**config, "elapsed_seconds": round(elapsed, 3)},
        metrics=metrics,
        per_dataset=per_dataset,
        per_fold=per_fold,
        selection=selection,
        device=device,
        paths=paths,
        labels=label_info,
        complete=complete,
        versions=library_versions(),
        curves=curves,
        angles=angles,
        bootstrap=bootstrap,
    )
    atomic_write_text(out / "results.json", json.dumps(_clean(res.to_dict()), indent=2, default=str, allow_nan=False))
    return res


def _clean(obj):
    """NaN/inf -> None, recursively (results.json is strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _f(x, nd: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def results_table(res) -> str:
    """Human-readable summary of one run (what ``mepipe train`` prints)."""
    m = res.metrics
    c = res.config
    lines = [
        f"{c['model']} · {c['protocol']} · {c['n_folds']} folds · device {res.device} · selection {res.selection['rule']}"
        + (" (OPTIMISTIC)" if res.selection.get("optimistic") else ""),
        f"  n={m['n']}  accuracy {_f(m['accuracy'])}  macro-F1 {_f(m['macro_f1'])}  "
        f"UF1 {_f(m['uf1'])}  UAR {_f(m['uar'])}   (pooled over folds)",
    ]
    b = getattr(res, "bootstrap", None)
    if b:
        lines.append(
            f"  95 % bootstrap over {b['subjects']} subjects: UF1 [{_f(b['uf1']['low'])}, "
            f"{_f(b['uf1']['high'])}]  UAR [{_f(b['uar']['low'])}, {_f(b['uar']['high'])}]"
        )
    width = max([len(k) for k in m["per_class"]] + [5])
    lines.append(f"  {'class':<{width}}  support  predicted  recall     F1")
    for k, v in m["per_class"].items():
        lines.append(f"  {k:<{width}}  {v['support']:7d}  {v['predicted']:9d}  {_f(v['recall']):>6}  {_f(v['f1']):>6}")
    if res.per_dataset:
        lines.append("  per dataset:")
        for d, v in res.per_dataset.items():
            lines.append(
                f"    {d:<12} n={v['n']:<5d} UF1 {_f(v['uf1'])}  UAR {_f(v['uar'])}  accuracy {_f(v['accuracy'])}"
            )
    ex = res.labels.get("excluded_total", 0)
    if ex:
        lines.append(
            f"  excluded by the label map: {ex} sample(s) ({', '.join(f'{k} {n}' for k, n in res.labels['excluded'].items())})"
        )
    for note in m.get("notes", []):
        lines.append(f"  note: {note}")
    angles = getattr(res, "angles", None)
    if angles:
        last = ", ".join(f"{k} {v[-1]:.1f}°" for k, v in angles.items() if v)
        start = res.angles_start() if hasattr(res, "angles_start") else None
        lines.append(
            f"  SOA angles at the last epoch (axis mean over folds; 90 = vertical = CVA): {last}"
            + (f"; started at {start:g}°" if start is not None else "")
        )
        reading = res.angles_reading() if hasattr(res, "angles_reading") else None
        if reading:
            lines.append(f"  note: {reading}")
    lines.append(f"  outputs: {res.out}")
    return "\n".join(lines)


def demo_table(results_list) -> str:
    """A table of UF1/UAR per model with the paths of the plots (for ``make demo``).

    ``results_list`` holds :class:`~mepipe.train.engine.Results` objects or run folders.
    Rows selected with the optimistic ``test-best`` rule are marked ``*`` and footnoted.
    """
    from .results import Results

    rows = []
    any_opt = False
    for r in results_list:
        if not isinstance(r, Results):
            r = Results.load(r)
        opt = bool(r.selection.get("optimistic"))
        any_opt |= opt
        plots = [r.paths[k] for k in ("confusion", "curves", "angles") if r.paths.get(k)]
        rows.append(
            [
                r.config["model"] + ("*" if opt else ""),
                r.config["protocol"],
                r.selection["rule"],
                str(r.metrics["n"]),
                _f(r.metrics["accuracy"]),
                _f(r.metrics["uf1"]),
                _f(r.metrics["uar"]),
                ", ".join(plots),
            ]
        )
    head = ["model", "protocol", "selection", "n", "accuracy", "UF1", "UAR", "plots"]
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) if rows else len(head[i]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row))  # noqa: E731
    lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows]
    if any_opt:
        lines.append("* optimistic: model selected on the test folds (--select test-best); not a fair estimate")
    return "\n".join(lines)
