"""``mepipe datasets``: list supported datasets, compare composite counts, check a dataset copy.

* ``mepipe datasets`` lists each dataset, what its folder must hold and its options;
* ``mepipe datasets --counts [--dataset X --root R [--annotation F]] ... [--gt combined_3class_gt.csv]``
  prints the MEGC 2019 composite reference counts beside what the given copies yield;
* ``mepipe datasets check --dataset X --root R [--annotation F] [--option key=value] [--notes]``
  (repeat ``--dataset``/``--root`` for several) prints, per dataset, the sheet used, rows, samples,
  failures by reason and notes by kind, then every problem row (``--notes``: every note too), and
  exits 1 when any row failed.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import MepipeError


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``datasets`` command to a ``mepipe`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "datasets",
        help="list supported datasets, composite counts, check a dataset copy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--counts", action="store_true", help="MEGC 2019 composite reference counts beside your copies'")
    p.add_argument("--dataset", action="append", default=[], help="dataset name (repeat with --root for several)")
    p.add_argument("--root", action="append", default=[], help="dataset folder (one per --dataset)")
    p.add_argument(
        "--annotation", action="append", default=[], help="annotation file override (one per --dataset, in order)"
    )
    p.add_argument("--gt", help="official MEGC 2019 list combined_3class_gt*.csv: count exactly the listed samples")
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="adapter option, e.g. apex_rule=max-motion"
    )
    sub = p.add_subparsers(dest="datasets_command")
    c = sub.add_parser(
        "check", help="sheet used, rows, samples, failures and notes of dataset copies; exit 1 if a row failed"
    )
    c.add_argument(
        "--dataset", required=True, action="append", dest="check_dataset", help="repeat with --root for several"
    )
    c.add_argument("--root", required=True, action="append", dest="check_root", help="one per --dataset")
    c.add_argument(
        "--annotation",
        action="append",
        default=[],
        dest="check_annotation",
        help="annotation file override (one per --dataset, in order)",
    )
    c.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", dest="check_option")
    c.add_argument("--notes", action="store_true", help="also list every note of every sample")
    p.set_defaults(func=run)
    return p


def _options(pairs) -> dict:
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise MepipeError(f"--option takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _list(out) -> int:
    from . import list_datasets

    for info in list_datasets():
        print(f"{info.name}: {info.description}", file=out)
        print(f"    expects: {info.expects}", file=out)
        if info.emotions:
            print(f"    emotions: {', '.join(info.emotions)}", file=out)
        if info.options:
            print(f"    options: {', '.join(info.options)}", file=out)
    return 0


def _counts(args, out) -> int:
    from ..labels import composite_table, samples_table, select_megc2019
    from . import load_dataset

    if len(args.dataset) != len(args.root):
        raise MepipeError("give one --root per --dataset")
    if args.annotation and len(args.annotation) != len(args.dataset):
        raise MepipeError("give one --annotation per --dataset (or none)")
    opts = _options(args.option)
    samples = []
    for i, (name, root) in enumerate(zip(args.dataset, args.root)):
        ann = args.annotation[i] if args.annotation else None
        got, failures = load_dataset(name, root, ann, **opts)
        samples += got
        if failures:
            print(
                f"{name}: {len(got)} samples read, {len(failures)} rows failed (run `mepipe datasets check`)", file=out
            )
    _, info = select_megc2019(samples_table(samples), args.gt)
    print(composite_table(info), file=out)
    for why, n in sorted(info["left_out"].items()):
        print(f"  left out by the rules: {why}: {n}", file=out)
    for line in info.get("disagreements", []):
        print(f"  list and rules disagree: {line}", file=out)
    for line in info.get("list_problems", []):
        print(f"  {line}", file=out)
    return 0


def _check(args, out) -> int:
    from . import report_dataset

    names, roots, anns = args.check_dataset, args.check_root, args.check_annotation
    if len(names) != len(roots):
        raise MepipeError("give one --root per --dataset")
    if anns and len(anns) != len(names):
        raise MepipeError("give one --annotation per --dataset (or none)")
    problems = 0
    for i, (name, root) in enumerate(zip(names, roots)):
        report = report_dataset(name, root, anns[i] if anns else None, **_options(args.check_option))
        print(report.text(notes=args.notes), file=out)
        problems += len(report.failures)
    print(f"{problems} problem row(s)", file=out)
    return 1 if problems else 0


def run(args, out=None) -> int:
    """Run the parsed ``datasets`` command; returns the exit code. Errors print one line, exit 2."""
    out = out or sys.stdout
    try:
        if getattr(args, "datasets_command", None) == "check":
            return _check(args, out)
        if args.counts:
            return _counts(args, out)
        return _list(out)
    except MepipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv=None, out=None) -> int:
    """Stand-alone entry: ``python -m mepipe.datasets.cli [datasets args]``."""
    parser = argparse.ArgumentParser(prog="mepipe")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["datasets", *(argv or [])])
    return args.func(args, out) if out is not None else args.func(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
