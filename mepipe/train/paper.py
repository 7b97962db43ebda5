"""``mepipe report RUN... --out report.md``: the papers' tables with this project's figures beside
the figures the papers report.

* FaceSleuth (CASME II 5-class, SAMM 5-class, MMEW 4-class; LOSO; accuracy % / F1): the
  SOA configurations A-D of its orientation study and the ResNet-18 baseline of its ablation;
* AHMSA-Net (the MEGC 2019 composite, 3DB: Full / SMIC / SAMM / CASME II UF1 and UAR, Table 4;
  CAS(ME)^3 UF1 and UAR, Table 5).

Each of this project's rows says its selection rule (``final``, ``val`` or the optimistic
``test-best``) and, for a multi-seed run, gives mean ± std over seeds. The papers' figures are
marked "reported in the paper": they come from the papers' own code and selection (the FaceSleuth
and HTNet-style scripts keep the best test epoch), not from a run of this project.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .seeds import load_runs

#: FaceSleuth, orientation study (§3.5.2) and ablation baseline (Table 4): accuracy %, F1
FACESLEUTH_REPORTED = {
    "facesleuth-cva": {"casme2": (94.35, 0.94), "samm": (86.73, 0.817), "mmew": (92.42, 0.933)},
    "facesleuth-soa-shared": {"casme2": (93.82, 0.943), "samm": (86.91, 0.831), "mmew": (92.55, 0.929)},
    "facesleuth-soa": {"casme2": (95.11, 0.918), "samm": (87.05, 0.84), "mmew": (92.85, 0.917)},
    "facesleuth-soa-frozen": {"casme2": (84.70, 0.823), "samm": (78.23, 0.693), "mmew": (81.80, 0.803)},
    "resnet18-baseline": {"casme2": (81.12, 0.7582), "samm": (73.53, 0.6345), "mmew": (81.75, 0.7921)},
}
FACESLEUTH_NAMES = {
    "facesleuth-cva": "A (CVA)",
    "facesleuth-soa-shared": "B (SOA shared)",
    "facesleuth-soa": "C (SOA per layer)",
    "facesleuth-soa-frozen": "D (SOA frozen at 0°)",
    "resnet18-baseline": "ResNet-18 baseline",
}
FACESLEUTH_MAPS = {"casme2": "casme2-5class", "samm": "samm-5class", "mmew": "mmew-4class"}
#: AHMSA-Net, Table 4 (3DB) and Table 5 (CAS(ME)^3): UF1, UAR
AHMSA_REPORTED = {
    "full": (0.8040, 0.7821),
    "smic": (0.7298, 0.7181),
    "samm": (0.8803, 0.8524),
    "casme2": (0.8253, 0.8029),
    "casme3": (0.8120, 0.7708),
}


def _stat(values) -> tuple[float | None, float | None]:
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    if not np.isfinite(v).any():
        return None, None
    return float(np.nanmean(v)), float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else None


def _cell(values, scale: float = 1.0, nd: int = 3) -> str:
    m, s = _stat([None if x is None else x * scale for x in values])
    if m is None:
        return "-"
    return f"{m:.{nd}f}" + (f" ± {s:.{nd}f}" if s is not None else "")


def describe(runs) -> dict:
    """What a run is, for the tables: model, protocol, datasets, label map, selection, seeds."""
    r = runs[0]
    datasets = sorted(set(r.predictions["dataset"]))
    return {
        "model": r.config["model"],
        "protocol": r.config["protocol"],
        "datasets": datasets,
        "label_map": r.labels.get("name"),
        "select": r.selection["rule"],
        "optimistic": bool(r.selection.get("optimistic")),
        "seeds": [int(x.config["seed"]) for x in runs],
    }


def report(run_dirs, out) -> str:
    """Write ``out`` (markdown) with the papers' tables; returns its text."""
    fs: dict = {}
    ah: list = []
    skipped = []
    for d in run_dirs:
        runs = load_runs(d)
        info = describe(runs)
        tag = f"{info['select']}{' (OPTIMISTIC)' if info['optimistic'] else ''}, {len(runs)} seed(s)"
        if (
            info["protocol"] == "loso"
            and len(info["datasets"]) == 1
            and info["model"] in FACESLEUTH_REPORTED
            and FACESLEUTH_MAPS.get(info["datasets"][0]) == info["label_map"]
        ):
            ds = info["datasets"][0]
            fs.setdefault(info["model"], {})[ds] = (
                f"{_cell([x.metrics['accuracy'] for x in runs], 100, 2)} / {_cell([x.metrics['macro_f1'] for x in runs])}",
                tag,
                d,
            )
        elif info["protocol"] == "composite":
            row = {"full": (_cell([x.metrics["uf1"] for x in runs]), _cell([x.metrics["uar"] for x in runs]))}
            for ds in ("smic", "samm", "casme2"):
                row[ds] = (
                    _cell([x.per_dataset.get(ds, {}).get("uf1") for x in runs]),
                    _cell([x.per_dataset.get(ds, {}).get("uar") for x in runs]),
                )
            ah.append((info, row, tag, d))
        elif info["protocol"] == "loso" and info["datasets"] == ["casme3"] and info["label_map"] == "casme3-3class":
            ah.append(
                (
                    info,
                    {"casme3": (_cell([x.metrics["uf1"] for x in runs]), _cell([x.metrics["uar"] for x in runs]))},
                    tag,
                    d,
                )
            )
        else:
            skipped.append(
                f"`{d}` ({info['model']}, {info['protocol']}, {', '.join(info['datasets'])}, "
                f"{info['label_map']}): no table of the papers has this setting"
            )
    lines = [
        "# mepipe results beside the papers'\n",
        "Figures marked *reported in the paper* are copied from the papers; they come from the authors' "
        "code and model selection, not from a run of this project. This project's rows say their selection "
        "rule; `test-best` (the best test epoch) is optimistic.\n",
    ]
    if fs:
        lines += [
            "## FaceSleuth: accuracy (%) / F1, LOSO (CASME II and SAMM 5 classes, MMEW 4 classes)\n",
            "| model | source | CASME II | SAMM | MMEW |",
            "|---|---|---|---|---|",
        ]
        for model in FACESLEUTH_REPORTED:
            if model not in fs:
                continue
            rep = FACESLEUTH_REPORTED[model]
            lines.append(
                f"| {FACESLEUTH_NAMES[model]} | reported in the paper | "
                + " | ".join(f"{rep[ds][0]:.2f} / {rep[ds][1]:.3f}" for ds in ("casme2", "samm", "mmew"))
                + " |"
            )
            mine = fs[model]
            tags = sorted({v[1] for v in mine.values()})
            lines.append(
                f"| {FACESLEUTH_NAMES[model]} | mepipe ({'; '.join(tags)}) | "
                + " | ".join(mine[ds][0] if ds in mine else "-" for ds in ("casme2", "samm", "mmew"))
                + " |"
            )
    if ah:
        lines += [
            "\n## AHMSA-Net table layout: UF1 / UAR (3DB = MEGC 2019 composite; CAS(ME)^3 3 classes)\n",
            "| model | source | Full | SMIC | SAMM | CASME II | CAS(ME)^3 |",
            "|---|---|---|---|---|---|---|",
        ]
        lines.append(
            "| AHMSA-Net | reported in the paper | "
            + " | ".join(
                f"{AHMSA_REPORTED[k][0]:.4f} / {AHMSA_REPORTED[k][1]:.4f}"
                for k in ("full", "smic", "samm", "casme2", "casme3")
            )
            + " |"
        )
        for info, row, tag, _d in ah:
            lines.append(
                f"| {info['model']} | mepipe ({tag}) | "
                + " | ".join(
                    f"{row[k][0]} / {row[k][1]}" if k in row else "-"
                    for k in ("full", "smic", "samm", "casme2", "casme3")
                )
                + " |"
            )
    if skipped:
        lines += ["\nNot in a table:"] + [f"- {s}" for s in skipped]
    text = "\n".join(lines) + "\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_write_text

    atomic_write_text(out, text)
    return text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="the papers' tables: your runs beside the figures the papers report",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("runs", nargs="+", help="run folders of mepipe train")
    p.add_argument("--out", default="report.md")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import MepipeError

    try:
        text = report(args.runs, args.out)
    except MepipeError as e:
        print(f"mepipe report: error: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {args.out}")
    return 0
