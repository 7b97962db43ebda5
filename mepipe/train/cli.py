"""``mepipe train``: the command-line face of :func:`mepipe.train.run`.

``register(subparsers)`` adds the subcommand to the ``mepipe`` parser; the parsed namespace's
``func(args)`` runs it and returns the exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import cliargs as A
from ..aus import AU_LISTS
from ..device import DEVICE_HELP
from ..parallel import BACKENDS
from .augment import AUGMENTATIONS
from .config import CLASS_WEIGHTINGS, OPTIMIZERS, SELECTIONS
from .protocols import PROTOCOLS


def _label_map_arg(text: str):
    """A label-map name, a JSON file, a TOML file or an inline JSON object."""
    import argparse

    p = Path(text)
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        if p.suffix.lower() in (".json", ".toml"):
            if not p.is_file():
                raise argparse.ArgumentTypeError(f"label map file not found: {p}")
            body = p.read_text(encoding="utf-8")
            if p.suffix.lower() == ".json":
                return json.loads(body)
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(body)
            return data.get("labels", data)
    except ValueError as e:  # JSON and TOML decode errors
        raise argparse.ArgumentTypeError(f"label map {text!r} is not valid: {e}") from None
    return text


def _json_object(text: str) -> dict:
    import argparse

    try:
        v = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train and evaluate a model on caches (LOSO / LODO / holdout / composite)",
        description="Train a bundled model on one or more caches under a subject-independent protocol and "
        "report accuracy, macro-F1, UF1 and UAR pooled over folds. See docs/training.md.",
    )
    p.add_argument("caches", nargs="+", help="cache files (.h5) written by `mepipe preprocess`")
    p.add_argument("--model", required=True, help="model name (see `mepipe models`)")
    p.add_argument("--protocol", default="loso", choices=PROTOCOLS)
    p.add_argument("--epochs", type=A.positive_int, default=None, help="default: the model's paper setting")
    p.add_argument("--batch-size", type=A.positive_int, default=None, help="default: the model's paper setting")
    p.add_argument("--lr", type=A.positive_float, default=None, help="default: the model's paper setting")
    p.add_argument("--weight-decay", type=A.nonneg_float, default=None, help="default: the model's paper setting")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="default: the model's paper setting")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        default=None,
        help="run the whole protocol once per seed: a count (5 = seeds 0-4) or a list (0,3,7); "
        "out/seed-<s>/ per seed, out/results.json with mean ± std and bootstrap intervals",
    )
    p.add_argument(
        "--threads",
        type=A.positive_int,
        default=1,
        help="torch threads of every fold, in process or in a worker (default 1: results do not depend on --jobs)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="torch's deterministic algorithms (and cuBLAS's workspace setting on CUDA); see docs/training.md",
    )
    p.add_argument("--out", default=None, help="run folder (default runs/MODEL-PROTOCOL)")
    p.add_argument("--jobs", type=A.jobs, default=1, help="folds trained in parallel (default 1; -1: every core)")
    p.add_argument(
        "--backend",
        default="loky",
        choices=BACKENDS,
        help="joblib backend for --jobs > 1; dask uses the active Client or a loopback LocalCluster",
    )
    p.add_argument(
        "--select",
        default="final",
        choices=SELECTIONS,
        help="final (default), val (validation split from training subjects), "
        "test-best (OPTIMISTIC: peers' best epoch per test fold)",
    )
    p.add_argument("--val-fraction", type=A.fraction, default=0.2, help="share of training samples for --select val")
    p.add_argument("--holdout-fraction", type=A.fraction, default=0.2, help="test share for --protocol holdout")
    p.add_argument(
        "--label-map",
        type=_label_map_arg,
        default=None,
        help="label map: a name (see docs/training.md: native, casme2-5class, samm-5class, mmew-4class, "
        "megc2019-3class, casme3-3class/4class/7class, objective), a JSON/TOML file or inline JSON; "
        "default: native (the caches' emotions); composite and lodo: the MEGC 2019 composite",
    )
    p.add_argument("--class-weighting", default="none", choices=CLASS_WEIGHTINGS)
    p.add_argument("--augment", default="none", choices=AUGMENTATIONS)
    p.add_argument(
        "--model-kwargs",
        type=_json_object,
        default=None,
        help="JSON object passed to the model builder, e.g. '{\"dropout\": 0.3}'",
    )
    p.add_argument(
        "--folds",
        type=A.index_ranges,
        default=None,
        help="train only these fold indices (e.g. 0-3,7); a later run without it finishes the rest",
    )
    p.add_argument(
        "--composite-list",
        default=None,
        help="the official MEGC 2019 list (combined_3class_gt.csv): with --protocol composite or lodo it "
        "decides membership and labels (disagreements with the rules are reported)",
    )
    p.add_argument(
        "--allow-partial-composite",
        action="store_true",
        help="train a composite whose counts differ from the MEGC 2019 reference (e.g. without one "
        "dataset); results.json records it",
    )
    p.add_argument(
        "--au-list",
        default="mepipe",
        choices=sorted(AU_LISTS),
        help="the 21 AUs of the AU vector: mepipe (default: those the datasets annotate) or authors "
        "(the FaceSleuth authors': AU 28 and 45 instead of 11 and 13)",
    )
    p.add_argument(
        "--allow-missing-aus",
        action="store_true",
        help="let an AU model train on samples of datasets that annotate no AUs (SMIC)",
    )
    p.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="leave out samples whose inputs hold NaN or inf (default: such samples stop the run)",
    )
    p.add_argument(
        "--no-resume", dest="resume", action="store_false", help="retrain every fold even if --out holds finished ones"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import MepipeError
    from .engine import run

    try:
        res = run(
            args.caches,
            args.model,
            protocol=args.protocol,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            device=args.device,
            seed=args.seed,
            out=args.out,
            jobs=args.jobs,
            select=args.select,
            label_map=args.label_map,
            class_weighting=args.class_weighting,
            augment=args.augment,
            model_kwargs=args.model_kwargs,
            resume=args.resume,
            progress=not args.quiet,
            backend=args.backend,
            val_fraction=args.val_fraction,
            holdout_fraction=args.holdout_fraction,
            weight_decay=args.weight_decay,
            optimizer=args.optimizer,
            folds=args.folds,
            drop_nonfinite=args.drop_nonfinite,
            composite_list=args.composite_list,
            allow_partial_composite=args.allow_partial_composite,
            allow_missing_aus=args.allow_missing_aus,
            seeds=args.seeds,
            threads=args.threads,
            deterministic=args.deterministic,
            au_list=args.au_list,
        )
    except MepipeError as e:
        print(f"mepipe train: error: {e}", file=sys.stderr)
        return 2
    print(res.table())
    return 0
